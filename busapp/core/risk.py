"""The lesion's malignancy assessment: p(malignant), its band and what the band means.

Every threshold, band and figure comes from the model card's ``"decision"`` block (chosen by
leave-one-site-out validation at training time); nothing clinical is a constant in this file. A
card without the block (busnet 1.5.0) still gives p(malignant), with a headline that says there
is no validated threshold, so no reader takes an unvalidated number for a decision rule.

"Normal" (the classifier's top class) is a statement about the image, no lesion found, and is
worded so; it never hides a p(malignant) at or above the suspicious threshold.

No Qt; plain Python.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

SCORES = ("p_malignant",)  # the scores this module can compute, by the card's "score" name
NO_THRESHOLD = "no validated threshold"
CSV_COLUMNS = ("p_malignant", "risk_band", "suspicious", "threshold", "threshold_validated")


class DecisionError(ValueError):
    """The card's decision block is malformed; the message names the problem."""


@dataclass(frozen=True)
class Band:
    name: str
    lo: float  # from, inclusive
    hi: float  # to, exclusive except for the last band
    meaning: str


@dataclass(frozen=True)
class Decision:
    """The card's decision rule, checked: bands cover 0..1 in order; the suspicious threshold is
    where the last band starts."""

    score: str
    threshold: float
    bands: tuple[Band, ...]
    per_site: dict[str, Any]
    chosen_on: str

    def band_for(self, p: float) -> Band:
        for b in self.bands:
            if b.lo <= p < b.hi:
                return b
        return self.bands[-1]  # p == 1.0


def _min_sensitivity(per_site: dict[str, Any]) -> float | None:
    vals = [s.get("sensitivity", {}).get("value") for s in per_site.values() if isinstance(s, dict)]
    vals = [float(v) for v in vals if isinstance(v, int | float)]
    return min(vals) if vals else None


def parse_decision(card: dict[str, Any] | None) -> Decision | None:
    """The card's decision rule, None if the card has none; DecisionError if it is malformed."""
    block = (card or {}).get("decision")
    if block is None:
        return None
    try:
        score = str(block.get("score", "p_malignant"))
        if score not in SCORES:
            raise DecisionError(f"unknown score {score!r}")
        t = float(block["suspicious_threshold"])
        per_site = dict(block.get("per_site") or {})
        bands = tuple(Band(str(b["name"]), float(b["from"]), float(b["to"]), str(b.get("meaning") or ""))
                      for b in block["bands"])
    except (KeyError, TypeError, ValueError) as e:
        raise DecisionError(f"the model card's decision block is incomplete ({e})") from e
    if not bands or not 0.0 < t < 1.0:
        raise DecisionError("the model card's decision block needs bands and a threshold between 0 and 1")
    edges_ok = bands[0].lo == 0.0 and bands[-1].hi == 1.0 and all(
        a.hi == b.lo and a.lo < a.hi for a, b in itertools.pairwise(bands)) and bands[-1].lo < 1.0
    if not edges_ok:
        raise DecisionError("the model card's bands must run from 0 to 1 without gaps or overlaps")
    if not math.isclose(bands[-1].lo, t):
        raise DecisionError("the model card's last band must start at the suspicious threshold")
    # The suspicious band's meaning may be left to the measured figures.
    if not bands[-1].meaning:
        s = _min_sensitivity(per_site)
        if s is not None:
            bands = (*bands[:-1], Band(bands[-1].name, bands[-1].lo, bands[-1].hi,
                                       f"at this level the model found at least {s:.0%} of cancers at "
                                       "hospitals it had not seen"))
    return Decision(score, t, bands, per_site, str(block.get("chosen_on", "")))


@dataclass(frozen=True)
class RiskAssessment:
    p_malignant: float
    band: str | None
    band_meaning: str | None
    suspicious: bool | None
    threshold: float | None
    validated: bool
    headline: str
    lesion_found: bool = True  # False when the classifier's top class is "normal"
    bands: tuple[Band, ...] = ()  # for drawing the bar; empty without a validated rule
    note: str | None = None  # why there is no validated threshold, when there is none

    def to_json(self) -> dict[str, Any]:
        return {
            "p_malignant": round(self.p_malignant, 6),
            "band": self.band,
            "band_meaning": self.band_meaning,
            "suspicious": self.suspicious,
            "threshold": self.threshold,
            "validated": self.validated,
            "lesion_found": self.lesion_found,
            "headline": self.headline,
        }

    def csv_values(self) -> dict[str, str]:
        """One row's cells for ``CSV_COLUMNS`` (empty where there is no validated threshold)."""
        return {
            "p_malignant": f"{self.p_malignant:.4f}",
            "risk_band": self.band or "",
            "suspicious": "" if self.suspicious is None else ("yes" if self.suspicious else "no"),
            "threshold": "" if self.threshold is None else f"{self.threshold:.4f}",
            "threshold_validated": "yes" if self.validated else "no",
        }

    @property
    def list_text(self) -> str:
        """A short form for the image list: the band, or p(malignant) alone."""
        if not self.lesion_found and not self.suspicious:
            return "no lesion found"
        if self.band:
            return f"{self.band} {self.p_malignant:.2f}"
        return f"p(malignant) {self.p_malignant:.2f}"


def _probs(probabilities: Any) -> dict[str, float]:
    """A Prediction, a {class: p} dict: the class probabilities."""
    p = getattr(probabilities, "probabilities", probabilities)
    return {str(k): float(v) for k, v in dict(p).items()}


def assess(probabilities: Any, bundle: Any = None, card: dict[str, Any] | None = None) -> RiskAssessment:
    """The malignancy assessment for one result (a Prediction or a {class: p} dict) under the
    decision rule in the bundle's (or the given) card."""
    probs = _probs(probabilities)
    if "malignant" not in probs:
        raise ValueError("the model has no 'malignant' class")
    p = min(1.0, max(0.0, probs["malignant"]))
    lesion = max(probs, key=probs.__getitem__) != "normal"
    card = card if card is not None else getattr(bundle, "card", None)
    note = None
    try:
        decision = parse_decision(card)
    except DecisionError as e:
        decision, note = None, str(e)
    if decision is None:
        head = f"p(malignant) {p:.2f} \u2013 {NO_THRESHOLD}"
        if not lesion:
            head = f"No lesion found \u2013 p(malignant) {p:.2f}, {NO_THRESHOLD}"
        return RiskAssessment(p, None, None, None, None, False, head, lesion, (),
                              note or "this model's card has no decision rule validated on other hospitals")
    band = decision.band_for(p)
    suspicious = p >= decision.threshold
    head = f"{band.name[:1].upper()}{band.name[1:]} \u2013 p(malignant) {p:.2f}"
    if not lesion and not suspicious:
        head = f"No lesion found \u2013 p(malignant) {p:.2f} ({band.name})"
    return RiskAssessment(p, band.name, band.meaning or None, suspicious, decision.threshold, True, head,
                          lesion, decision.bands)


def json_fields(risk: RiskAssessment | None) -> dict[str, Any]:
    """The keys ``busapp-cli predict`` adds to each record: ``suspicious`` and ``threshold`` at the top
    (issue 23) and the whole assessment under ``risk``."""
    if risk is None:
        return {}
    return {"suspicious": risk.suspicious, "threshold": risk.threshold, "risk": risk.to_json()}
