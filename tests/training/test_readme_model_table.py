"""The README's model table is the card's (``scripts/card_table.py``), so the two cannot drift apart."""

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
    assert module.model_section(card) in readme
    assert f"busnet {card['version']}" in readme
    acc = card["metrics"]["test"]["accuracy"]["value"]
    assert f"| Accuracy (3 classes) | {acc:.3f} (" in module.model_section(card)
