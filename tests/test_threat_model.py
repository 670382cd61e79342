"""docs/threat-model.md names, for each promise, the test that checks it: those tests must exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_the_threat_model_names_exists():
    text = (REPO / "docs" / "threat-model.md").read_text(encoding="utf-8")
    # test files (`core/test_x.py`, `core/test_x.py::test_y`) and benchmark scripts; not source modules
    refs = [(p, n) for p, n in re.findall(r"`([\w/]+\.py)(?:::(\w+))?", text)
            if Path(p).name.startswith("test_") or p.startswith("benchmarks/")]
    assert len(refs) >= 30
    missing = []
    for path, name in refs:
        base = REPO / path if path.startswith(("benchmarks/", "busapp/")) else REPO / "tests" / path
        if not base.exists():
            missing.append(path)
        elif name and not re.search(rf"^def {name}\(", base.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert missing == []
