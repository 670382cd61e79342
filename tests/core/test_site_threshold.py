"""A site's own threshold: proposed from its validation, stored with its report, used by assess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from risk_cards import bundle_with_decision

from busapp.core import site_threshold
from busapp.core.audit import AuditLog
from busapp.core.model_bundle import load_bundle
from busapp.core.risk import assess
from busapp.core.site_validation import ImageOutcome

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "busapp-data"
    monkeypatch.setenv("BUSAPP_DATA_DIR", str(d))
    return d


def test_proposal_is_the_highest_threshold_keeping_the_sensitivity() -> None:
    p = np.linspace(0.05, 0.95, 20)
    t = site_threshold.propose(p, 0.9)
    assert (p >= t).mean() >= 0.9
    assert (p >= np.nextafter(t, 1)).mean() < 0.9


def _value(bundle, t: float = 0.5) -> site_threshold.SiteThreshold:
    return site_threshold.SiteThreshold(t, bundle.card["files"]["tflite"]["sha256"], "ab" * 32, 0.92, 0.93, 60,
                                        "2026-12-01T22:00:00+00:00")


def test_assess_uses_the_site_threshold_for_its_model_only(tmp_path: Path, data_dir: Path) -> None:
    bundle = load_bundle(bundle_with_decision(tmp_path))
    probs = {"normal": 0.05, "benign": 0.55, "malignant": 0.40}
    assert assess(probs, bundle).suspicious  # card: 0.30
    audit = AuditLog(tmp_path / "audit.jsonl")
    site_threshold.save(_value(bundle), {"verdict": {"status": "consistent"}}, audit)
    r = assess(probs, bundle)
    assert (r.suspicious, r.threshold, r.threshold_source, r.card_threshold) == (False, 0.5, "site", 0.3)
    assert r.band == "intermediate" and r.bands[-1].lower == 0.5 and r.bands[1].upper == 0.5
    assert "site threshold 0.50" in r.site_note and r.to_json()["threshold_source"] == "site"
    assert r.csv_values()["threshold_source"] == "site"
    assert assess({"normal": 0.0, "benign": 0.4, "malignant": 0.6}, bundle).suspicious
    assert assess(probs, bundle, site=False).threshold == 0.3
    assert assess(probs, card=bundle.card).threshold == 0.3  # a card alone: its own rule
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert entries[-1]["action"] == "site_threshold_set" and entries[-1]["outputs"]["threshold"] == 0.5
    assert site_threshold.clear(audit) and assess(probs, bundle).threshold == 0.3


def test_no_threshold_from_a_run_too_small_for_a_verdict() -> None:
    figs = {"verdict": {"status": "insufficient", "text": "Not enough images for a verdict: 4 cancers."}}
    value, why = site_threshold.from_validation(figs, [], "ab" * 32, "cd" * 32, 0.92)
    assert value is None and "Not enough images" in why
    outs = [ImageOutcome(f"{i}.png", "malignant", probabilities={"malignant": p}) for i, p in
            enumerate(np.linspace(0.2, 0.99, 60))]
    value, _ = site_threshold.from_validation({"verdict": {"status": "consistent"}}, outs, "ab" * 32, "cd" * 32, 0.92)
    assert value is not None and value.site_sensitivity >= 0.92 and value.n_malignant == 60


def test_validate_cli_refuses_to_set_from_too_few_images(tmp_path: Path, data_dir: Path, data_root: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from busapp.cli.main import main

    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nmalignant/malignant (10).png,malignant\nbenign/benign (12).png,benign\n")
    rc = main(["validate", str(data_root / "busi"), "--labels", str(labels), "--out", str(tmp_path / "out"),
               "--quiet", "--set-site-threshold", "--model", str(bundle_with_decision(tmp_path))])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["site_threshold"]["set"] is False
    assert "Not enough images" in out["site_threshold"]["reason"]
    assert not (data_dir / site_threshold.FILE_NAME).exists()


def test_cli_refuses_and_shows(tmp_path: Path) -> None:
    env = {**os.environ, "BUSAPP_DATA_DIR": str(tmp_path / "d"), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "busapp.cli.main", "site-threshold"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout) == {"site_threshold": None}
