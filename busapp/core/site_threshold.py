"""A hospital's own suspicious-for-malignancy threshold, set from its validation report.

``busapp-cli validate ... --set-site-threshold`` (after a validation with enough images) stores,
in the user's data folder, the highest p(malignant) threshold that keeps this site's sensitivity
at the card's validated level, together with the validation report that justified it (its
sha256 and a copy of the report's JSON). ``core.risk.assess`` then uses it instead of the card's
threshold, for the model it was measured on only (by the model file's sha256), and says so in
every place the threshold appears (panel, report, CLI JSON, batch CSV). Setting and clearing it
are audited (numbers and sha256 only).

No Qt.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from busapp.core.paths import user_data_dir

FILE_NAME = "site_threshold.json"


@dataclass(frozen=True)
class SiteThreshold:
    threshold: float
    model_sha256: str
    report_sha256: str  # of the validation report's JSON that justified it
    target_sensitivity: float
    site_sensitivity: float
    n_malignant: int
    created: str

    @property
    def description(self) -> str:
        return (f"site threshold {self.threshold:.2f}, set {self.created[:10]} from this site's validation "
                f"({self.n_malignant} cancers, sensitivity {self.site_sensitivity:.2f}; report "
                f"{self.report_sha256[:12]})")


def path() -> Path:
    return user_data_dir(create=False) / FILE_NAME


_cache: dict[str, Any] = {"key": None, "value": None}


def load(model_sha256: str | None) -> SiteThreshold | None:
    """The stored threshold if it was set for this model file; None otherwise (or if unreadable).
    Re-read only when the file changes, so calling it for every analysis costs one stat."""
    if not model_sha256:
        return None
    p = path()
    try:
        st = os.stat(p)
    except OSError:
        return None
    key = (str(p), st.st_mtime_ns, st.st_size)
    if _cache["key"] != key:
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            value = SiteThreshold(**{k: d[k] for k in SiteThreshold.__dataclass_fields__})
            if not 0.0 < value.threshold < 1.0:
                value = None
        except (OSError, ValueError, KeyError, TypeError):
            value = None
        _cache.update(key=key, value=value)
    v = _cache["value"]
    return v if v is not None and v.model_sha256 == model_sha256 else None


def propose(p_malignant_of_cancers: np.ndarray, target: float) -> float | None:
    """The highest threshold at which at least ``target`` of these cancers are called."""
    p = np.sort(np.asarray(p_malignant_of_cancers, float))
    if not len(p):
        return None
    k = int(np.floor((1.0 - target) * len(p) + 1e-9))  # cancers that may fall below the threshold
    return float(min(max(p[k], 1e-6), 1 - 1e-6))


def save(value: SiteThreshold, report: dict[str, Any], audit: Any = None) -> Path:
    from busapp.core.atomic import write_text_atomic

    p = user_data_dir() / FILE_NAME
    write_text_atomic(p, json.dumps({**asdict(value), "report": report}, indent=1) + "\n")
    if audit is not None:
        audit.record("site_threshold_set", model={"sha256": value.model_sha256}, source="cli",
                     outputs={"threshold": round(value.threshold, 4), "report_sha256": value.report_sha256,
                              "target_sensitivity": value.target_sensitivity})
    return p


def clear(audit: Any = None) -> bool:
    p = path()
    if not p.exists():
        return False
    p.unlink()
    if audit is not None:
        audit.record("site_threshold_cleared", source="cli")
    return True


def from_validation(run_figures: dict[str, Any], outcomes: list[Any], model_sha256: str, report_sha256: str,
                    card_target: float | None) -> tuple[SiteThreshold | None, str]:
    """The threshold a validation run justifies, or None and why not (one sentence)."""
    if run_figures["verdict"]["status"] == "insufficient":
        return None, "Not enough images to set a site threshold: " + run_figures["verdict"]["text"]
    if card_target is None:
        return None, "The model card has no validated sensitivity to hold the site threshold to."
    cancers = np.array([o.p_malignant for o in outcomes if o.label == "malignant" and o.probabilities])
    t = propose(cancers, card_target)
    if t is None:
        return None, "No cancers were labelled, so no threshold can be set."
    sens = float((cancers >= t).mean())
    return SiteThreshold(t, model_sha256, report_sha256, card_target, sens, len(cancers),
                         _dt.datetime.now().astimezone().isoformat(timespec="seconds")), ""


def set_from_run(run: Any, report_path: Path, card: Any, model_sha256: str, audit: Any = None) -> dict[str, Any]:
    """Store the threshold a validation run (``site_validation.ValidationRun``, its report JSON at
    ``report_path``) justifies; {"set": True, "threshold", "file", "description"} or {"set": False,
    "reason"}. The target is the card's worst held-out-site sensitivity."""
    from busapp.core.hashing import sha256_file
    from busapp.core.risk import parse_decision

    decision = parse_decision(card)
    sens = [op.sensitivity.value for op in decision.per_site.values()] if decision is not None else []
    target = min((v for v in sens if v is not None), default=None)
    value, why = from_validation(run.figures, run.outcomes, model_sha256, sha256_file(report_path), target)
    if value is None:
        return {"set": False, "reason": why}
    where = save(value, json.loads(Path(report_path).read_text(encoding="utf-8")), audit)
    return {"set": True, "threshold": value.threshold, "file": str(where), "description": value.description}
