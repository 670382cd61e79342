"""The README's model table is the card's, so the two cannot drift apart."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _card_table():
    spec = importlib.util.spec_from_file_location("card_table", REPO / "scripts" / "card_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_committed_cards_metrics():
    module = _card_table()
    card = json.loads((REPO / "models" / "busnet" / "card.json").read_text())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert module.table(card) in readme
    assert module.site_table(card) in readme
    assert f"busnet {card['version']}" in readme


def test_cross_validation_column_appears_with_the_cards_figures():
    module = _card_table()
    card = json.loads((REPO / "models" / "busnet" / "card.json").read_text())
    card.pop("cross_validation", None)
    assert "cross-validation" not in module.table(card)
    card["cross_validation"] = {"figures": {k: 0.5 + i / 100 for i, k in enumerate(module.ROWS)}}
    rows = module.table(card).splitlines()
    assert rows[0].split(" | ")[3] == "cross-validation"
    assert [r.split(" | ")[3] for r in rows[2:]] == [f"{0.5 + i / 100:.3f}" for i in range(len(module.ROWS))]
