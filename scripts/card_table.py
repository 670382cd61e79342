"""Print the README's model section from a model card: one table of every test figure (pooled,
per site, per held-out site, cross-validation, the decision threshold's sensitivity and
specificity, as far as the card has them), then the card's limitations. No hand-copied figures:
``tests/training/test_readme_model_table.py`` checks that the README holds exactly this text.

    python scripts/card_table.py [models/busnet/card.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from busapp.core.card_format import decision_lines, limitations, markdown_table


def model_section(card: dict) -> str:
    """The table, the threshold (if the card ships one) and the limits, as Markdown."""
    parts = [markdown_table(card)]
    decision = decision_lines(card)
    if decision:
        parts.append("\n".join(f"- {line}" for line in decision))
    lim = limitations(card)
    if lim:
        parts.append("Limits (from the card):\n\n" + "\n".join(f"- {x}" for x in lim))
    return "\n\n".join(parts)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "models/busnet/card.json")
    print(model_section(json.loads(path.read_text(encoding="utf-8"))))
