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

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from busapp.core.model_card import Band, CardError, Decision, ModelCard
from busapp.core.model_card import parse_decision as _parse_decision

NO_THRESHOLD = "no validated threshold"
CSV_COLUMNS = ("p_malignant", "risk_band", "suspicious", "threshold", "threshold_validated", "threshold_source")


class DecisionError(ValueError):
    """The card's decision block is malformed; the message names the problem."""


def _min_sensitivity(decision: Decision) -> float | None:
    vals = [op.sensitivity.value for op in decision.per_site.values() if op.sensitivity.value is not None]
    return min(vals) if vals else None


def parse_decision(card: Mapping[str, Any] | None) -> Decision | None:
    """The card's decision rule (``core.model_card`` checks it), None if the card has none;
    DecisionError if a plain-dict card's block is malformed (a loaded bundle's card was checked
    when it was loaded). A suspicious band without a meaning gets one from the measured figures."""
    if card is None:
        return None
    if isinstance(card, ModelCard):
        decision = card.decision
    elif card.get("decision") is None:
        return None
    else:
        try:
            decision = _parse_decision(card["decision"], tuple(card.get("classes") or ("normal", "benign", "malignant")))
        except CardError as e:
            raise DecisionError(f"the model card's decision block is invalid: {e}") from e
    if decision is None:
        return None
    top = decision.band_for(decision.suspicious_threshold)
    s = _min_sensitivity(decision)
    if not top.meaning and s is not None:
        filled = replace(top, meaning=f"at this level the model found at least {s:.0%} of cancers at hospitals "
                                      "it had not seen")
        decision = replace(decision, bands=tuple(filled if b is top else b for b in decision.bands))
    return decision


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
    threshold_source: str | None = None  # "card", or "site" (core.site_threshold, from a local validation)
    site_note: str | None = None  # the site threshold's justification, in words
    card_threshold: float | None = None  # the card's own threshold, when a site threshold replaces it

    def to_json(self) -> dict[str, Any]:
        return {
            "p_malignant": round(self.p_malignant, 6),
            "band": self.band,
            "band_meaning": self.band_meaning,
            "suspicious": self.suspicious,
            "threshold": self.threshold,
            "validated": self.validated,
            "threshold_source": self.threshold_source,
            **({"site_threshold": self.site_note, "card_threshold": self.card_threshold}
               if self.threshold_source == "site" else {}),
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
            "threshold_source": self.threshold_source or "",
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


def _model_sha256(bundle: Any) -> str | None:
    try:
        return str(bundle.card["files"]["tflite"]["sha256"])
    except (AttributeError, KeyError, TypeError):
        return None


def _site_bands(bands: tuple[Band, ...], t: float) -> tuple[Band, ...]:
    """The card's bands with the suspicious band starting at the site's threshold instead."""
    below = [b for b in bands[:-1] if b.lower < t]
    if not below:
        return (replace(bands[-1], lower=0.0),)
    return (*below[:-1], replace(below[-1], upper=t), replace(bands[-1], lower=t))


def assess(probabilities: Any, bundle: Any = None, card: Mapping[str, Any] | None = None,
           site: Any = None) -> RiskAssessment:
    """The malignancy assessment for one result (a Prediction or a {class: p} dict) under the
    decision rule in the bundle's (or the given) card. A site threshold (``core.site_threshold``)
    set for the bundle's model file replaces the card's threshold; ``site=False`` ignores it."""
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
                              note or "this model's card has no decision rule tested at hospitals it had not seen")
    if site is None and bundle is not None:
        from busapp.core import site_threshold

        site = site_threshold.load(_model_sha256(bundle))
    bands, t, source, site_note = decision.bands, decision.suspicious_threshold, "card", None
    if site:
        t, source, site_note = float(site.threshold), "site", site.description
        top = bands[-1]
        bands = _site_bands(bands, t)
        bands = (*bands[:-1], replace(bands[-1], meaning=(
            f"at this level the model found {site.site_sensitivity:.0%} of this site's {site.n_malignant} cancers "
            f"in its own validation (the card's {top.meaning or 'figure'} applies from {decision.suspicious_threshold:.2f})")))
    band = next((b for b in bands if b.lower <= p < b.upper), bands[-1])
    suspicious = p >= t
    head = f"{band.name[:1].upper()}{band.name[1:]} \u2013 p(malignant) {p:.2f}"
    if not lesion and not suspicious:
        head = f"No lesion found \u2013 p(malignant) {p:.2f} ({band.name})"
    return RiskAssessment(p, band.name, band.meaning or None, suspicious, t, True, head, lesion, bands,
                          threshold_source=source, site_note=site_note,
                          card_threshold=decision.suspicious_threshold if site else None)


def band_tone(index: int, n_bands: int) -> int:
    """How band ``index`` of ``n_bands`` is tinted: 0 the lowest (green), 2 the highest (red), 1
    any between (amber); the panel, the image list and the PDF use the same three tints."""
    return 0 if index == 0 else 2 if index >= n_bands - 1 else 1


def class_summary(prediction: Any) -> str:
    """The top class in words, below the assessment (panel and report): "normal" as a statement
    about the image; never "suggests benign", which reads as reassurance."""
    label, p = prediction.label, prediction.confidence
    if prediction.low_confidence:
        return f"Uncertain \u2013 leans {label} ({p:.2f})"
    if label == "normal":
        return f"Top class normal ({p:.2f}): the model found no lesion in this image."
    return f"Most probable class: {label} ({p:.2f})"


def json_fields(risk: RiskAssessment | None) -> dict[str, Any]:
    """The keys ``busapp-cli predict`` adds to each record: ``suspicious`` and ``threshold`` at the top
    (issue 23) and the whole assessment under ``risk``."""
    if risk is None:
        return {}
    return {"suspicious": risk.suspicious, "threshold": risk.threshold, "risk": risk.to_json()}
