"""The model card as the runtime reads it: a small typed, read-only view of ``card.json``.

``ModelCard.from_dict`` checks what the app needs to run (files and sha256, input size, classes,
pre- and postprocessing, the optional ``decision`` thresholds) and refuses a card that lacks it or
contradicts itself, with a message that says which field. The figures to display (``metrics``)
are read leniently by ``parse_metrics``: a partial card still shows what it has.

A ``ModelCard`` is also a read-only ``Mapping`` over the JSON as written, for display code that
shows provenance fields the runtime does not interpret (training data, architecture, members).
Qt-free: the GUI, the CLI, the report and the training code share it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MASK_KEEP = ("all", "largest")  # postprocessing.mask_keep: every region over the threshold, or the largest
RUNTIME_FILE = "tflite"  # the role of the file the app runs; the others (keras) are references


class CardError(ValueError):
    """The card lacks a field the runtime needs, or a field has an impossible value."""


@dataclass(frozen=True)
class Figure:
    """One card figure: a point value and its 95% interval (None: nothing to measure / not given)."""

    value: float | None
    ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class SiteFigures:
    """The figures of one site's images (test split by data set, or a held-out site)."""

    n_images: int | None
    n_normal_images: int | None
    metrics: Mapping[str, Figure]


@dataclass(frozen=True)
class CardMetrics:
    test: Mapping[str, Figure] = field(default_factory=dict)
    n_test_images: int | None = None
    test_by_dataset: Mapping[str, SiteFigures] = field(default_factory=dict)
    held_out_site: Mapping[str, SiteFigures] = field(default_factory=dict)
    cross_validation: Mapping[str, float] = field(default_factory=dict)  # out-of-fold point values
    cross_validation_images: int | None = None
    ci: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    runtime: str = ""


@dataclass(frozen=True)
class Preprocessing:
    function: str
    letterbox: bool
    intensity_offset: float
    intensity_scale: float
    description: str = ""


@dataclass(frozen=True)
class Postprocessing:
    mask_threshold: float
    low_confidence_below: float
    mask_keep: str = "all"
    min_area_fraction: float = 0.0
    suppress_mask_when_normal: bool = False
    suppress_mask_when_normal_at_least: float | None = None  # no outline when p(normal) reaches this
    temperature: float | None = None  # already inside the graph; recorded for the reader


@dataclass(frozen=True)
class Band:
    name: str
    lower: float  # "from" in the card
    upper: float  # "to"
    meaning: str = ""


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity and specificity of the shipped threshold on one site."""

    sensitivity: Figure
    specificity: Figure
    n_malignant: int | None = None
    n_benign: int | None = None


@dataclass(frozen=True)
class Decision:
    """The card's ``decision`` block: a p(malignant) threshold and bands, chosen on held-out sites."""

    score: str
    suspicious_threshold: float
    bands: tuple[Band, ...]
    per_site: Mapping[str, OperatingPoint]
    chosen_on: str = ""

    def band_for(self, p: float) -> Band:
        """The band a probability falls in (a boundary belongs to the upper band)."""
        for band in self.bands:
            if p < band.upper:
                return band
        return self.bands[-1]


@dataclass(frozen=True, eq=False)
class ModelCard(Mapping[str, Any]):
    name: str
    version: str
    classes: tuple[str, ...]
    input_size: int
    files: Mapping[str, ModelFile]
    preprocessing: Preprocessing
    postprocessing: Postprocessing
    metrics: CardMetrics
    decision: Decision | None = None
    input_check: Mapping[str, Any] | None = None  # core.input_check reads its fields
    second_stage: Mapping[str, Any] | None = None  # core.second_stage.SecondStage.from_card reads it
    created: str = ""
    task: str = ""
    intended_use: str = ""
    limitations: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    # Mapping over the JSON as written (provenance fields the runtime does not interpret).
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the JSON (to write, or to amend in training code)."""
        import copy

        return copy.deepcopy(dict(self.raw))

    @classmethod
    def from_dict(cls, card: Mapping[str, Any]) -> ModelCard:
        """Check and type a parsed ``card.json``; ``CardError`` names the first field at fault."""
        if not isinstance(card, Mapping):
            raise CardError("the card is not a JSON object")
        for key in ("name", "version", "classes", "input", "files", "preprocessing", "postprocessing"):
            if key not in card:
                raise CardError(f"no '{key}'")
        classes = tuple(_str(c, "classes[]") for c in _list(card["classes"], "classes"))
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise CardError(f"'classes' must name two or more distinct classes, got {list(classes)}")
        size = _num(_map(card["input"], "input").get("size"), "input.size")
        if size != int(size) or not 16 <= size <= 4096:
            raise CardError(f"'input.size' must be a whole number of pixels, got {size}")
        files = {role: _model_file(f, role) for role, f in _map(card["files"], "files").items()}
        if RUNTIME_FILE not in files:
            raise CardError(f"'files' has no '{RUNTIME_FILE}' entry (the file the app runs)")
        metrics = parse_metrics(card)
        return cls(
            name=_str(card["name"], "name"),
            version=_str(card["version"], "version"),
            classes=classes,
            input_size=int(size),
            files=MappingProxyType(files),
            preprocessing=_preprocessing(_map(card["preprocessing"], "preprocessing")),
            postprocessing=_postprocessing(_map(card["postprocessing"], "postprocessing"), classes),
            metrics=metrics,
            decision=parse_decision(card["decision"], classes) if card.get("decision") is not None else None,
            input_check=(MappingProxyType(dict(_map(card["input_check"], "input_check")))
                         if card.get("input_check") is not None else None),
            second_stage=(MappingProxyType(dict(_map(card["second_stage"], "second_stage")))
                          if card.get("second_stage") is not None else None),
            created=str(card.get("created") or ""),
            task=str(card.get("task") or ""),
            intended_use=str(card.get("intended_use") or ""),
            limitations=tuple(str(x) for x in (card.get("limitations") or ())),
            raw=MappingProxyType(dict(card)),
        )


# --- the figures (lenient: a partial card shows what it has) -----------------------------------


def parse_figure(v: Any) -> Figure | None:
    """``{"value": v, "ci95": [lo, hi]}`` (or a bare number) -> Figure; None if not a figure."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return Figure(_finite(v))
    if not isinstance(v, Mapping) or "value" not in v:
        return None
    value = _finite(v["value"])
    ci = v.get("ci95")
    interval = None
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_finite(x) is not None for x in ci):
        interval = (float(ci[0]), float(ci[1]))
    return Figure(value, interval)


def parse_group(group: Any) -> dict[str, Figure]:
    """``{metric: figure}`` -> ``{metric: Figure}``, skipping what is not a figure."""
    if not isinstance(group, Mapping):
        return {}
    out = {k: parse_figure(v) for k, v in group.items()}
    return {k: v for k, v in out.items() if v is not None}


def parse_sites(group: Any) -> dict[str, SiteFigures]:
    """Per-site figures in either shape: ``{site: {n_images, n_normal_images, metrics: {...}}}``
    (1.5.0's test_by_dataset) or ``{site: {metric: figure, ...}}`` (busnet 2's held_out_site)."""
    if not isinstance(group, Mapping):
        return {}
    out = {}
    for site, part in group.items():
        if not isinstance(part, Mapping):
            continue
        figures = parse_group(part["metrics"] if isinstance(part.get("metrics"), Mapping) else part)
        out[site] = SiteFigures(_count(part.get("n_images")), _count(part.get("n_normal_images")),
                                MappingProxyType(figures))
    return out


def parse_metrics(card: Mapping[str, Any]) -> CardMetrics:
    """The card's figures to display: test split, per site, held-out sites, cross-validation."""
    m = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    cv = card.get("cross_validation") if isinstance(card.get("cross_validation"), Mapping) else {}
    cv_figures = {k: float(v) for k, v in (cv.get("figures") or {}).items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    return CardMetrics(
        test=MappingProxyType(parse_group(m.get("test"))),
        n_test_images=_count(m.get("n_test_images")),
        test_by_dataset=MappingProxyType(parse_sites(m.get("test_by_dataset"))),
        held_out_site=MappingProxyType(parse_sites(m.get("held_out_site"))),
        cross_validation=MappingProxyType(cv_figures),
        cross_validation_images=_count(cv.get("n_images")),
        ci=str(m["ci"]) if m.get("ci") else None,
        notes=tuple(str(x) for x in (m.get("notes") or ())),
    )


def as_card_metrics(card: ModelCard | Mapping[str, Any] | None) -> CardMetrics:
    """The figures of a typed card, or of a plain (possibly partial) card mapping."""
    if card is None:
        return CardMetrics()
    if isinstance(card, ModelCard):
        return card.metrics
    return parse_metrics(card)


# --- runtime fields (strict) ---------------------------------------------------------------------


def _model_file(f: Any, role: str) -> ModelFile:
    f = _map(f, f"files.{role}")
    sha = _str(f.get("sha256"), f"files.{role}.sha256").lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise CardError(f"'files.{role}.sha256' is not a sha256 hex digest")
    path = _str(f.get("path"), f"files.{role}.path")
    if "/" in path or "\\" in path or path in ("", ".", ".."):
        raise CardError(f"'files.{role}.path' must be a file name inside the bundle, got {path!r}")
    return ModelFile(path, sha, str(f.get("runtime") or ""))


def _preprocessing(p: Mapping[str, Any]) -> Preprocessing:
    scale = _num(p.get("intensity_scale"), "preprocessing.intensity_scale")
    if scale == 0:
        raise CardError("'preprocessing.intensity_scale' must not be 0")
    return Preprocessing(
        function=_str(p.get("function"), "preprocessing.function"),
        letterbox=bool(p.get("letterbox", True)),
        intensity_offset=_num(p.get("intensity_offset"), "preprocessing.intensity_offset"),
        intensity_scale=scale,
        description=str(p.get("description") or ""),
    )


def _postprocessing(p: Mapping[str, Any], classes: tuple[str, ...]) -> Postprocessing:
    keep = p.get("mask_keep", "all")
    if keep not in MASK_KEEP:
        raise CardError(f"unknown 'postprocessing.mask_keep' {keep!r} (one of {', '.join(MASK_KEEP)})")
    at_least = p.get("suppress_mask_when_normal_at_least")
    when_normal = bool(p.get("suppress_mask_when_normal", False))
    if (when_normal or at_least is not None) and "normal" not in classes:
        raise CardError("the outline rules need a 'normal' class")
    temperature = p.get("temperature")
    return Postprocessing(
        mask_threshold=_prob(p.get("mask_threshold"), "postprocessing.mask_threshold"),
        low_confidence_below=_prob(p.get("low_confidence_below"), "postprocessing.low_confidence_below"),
        mask_keep=keep,
        min_area_fraction=_prob(p.get("min_area_fraction", 0.0), "postprocessing.min_area_fraction"),
        suppress_mask_when_normal=when_normal,
        suppress_mask_when_normal_at_least=(None if at_least is None
                                            else _prob(at_least, "postprocessing.suppress_mask_when_normal_at_least")),
        temperature=None if temperature is None else _num(temperature, "postprocessing.temperature"),
    )


def parse_decision(d: Any, classes: tuple[str, ...]) -> Decision:
    """The ``decision`` block (contract: busnet 2's card), checked: bands cover 0-1 in order and the
    threshold starts one."""
    d = _map(d, "decision")
    score = _str(d.get("score", "p_malignant"), "decision.score")
    if score != "p_malignant" or "malignant" not in classes:
        raise CardError(f"'decision.score' must be p_malignant with a 'malignant' class, got {score!r}")
    t = _prob(d.get("suspicious_threshold"), "decision.suspicious_threshold")
    bands = []
    for i, b in enumerate(_list(d.get("bands", []), "decision.bands")):
        b = _map(b, f"decision.bands[{i}]")
        bands.append(Band(_str(b.get("name"), f"decision.bands[{i}].name"), _prob(b.get("from"), f"decision.bands[{i}].from"),
                          _prob(b.get("to"), f"decision.bands[{i}].to"), str(b.get("meaning") or "")))
    if not bands:
        raise CardError("'decision.bands' is empty")
    edges_ok = bands[0].lower == 0.0 and bands[-1].upper == 1.0 and all(
        a.upper == b.lower and a.lower < a.upper for a, b in itertools.pairwise(bands)) and bands[-1].lower < 1.0
    if not edges_ok:
        raise CardError("'decision.bands' must cover 0 to 1 in order, each band starting where the last ends")
    if t not in {b.lower for b in bands[1:]}:
        raise CardError(f"'decision.suspicious_threshold' {t} is not the start of a band")
    per_site = {}
    for site, s in _map(d.get("per_site", {}), "decision.per_site").items():
        s = _map(s, f"decision.per_site.{site}")
        sens, spec = parse_figure(s.get("sensitivity")), parse_figure(s.get("specificity"))
        if sens is None or spec is None:
            raise CardError(f"'decision.per_site.{site}' needs sensitivity and specificity figures")
        per_site[site] = OperatingPoint(sens, spec, _count(s.get("n_malignant")), _count(s.get("n_benign")))
    return Decision(score, t, tuple(bands), MappingProxyType(per_site), str(d.get("chosen_on") or ""))


def _map(v: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise CardError(f"'{name}' must be an object")
    return v


def _list(v: Any, name: str) -> list:
    if not isinstance(v, list | tuple):
        raise CardError(f"'{name}' must be a list")
    return list(v)


def _str(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v:
        raise CardError(f"'{name}' must be a non-empty string")
    return v


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CardError(f"'{name}' must be a number, got {v!r}")
    return float(v)


def _prob(v: Any, name: str) -> float:
    x = _num(v, name)
    if not 0.0 <= x <= 1.0:
        raise CardError(f"'{name}' must lie between 0 and 1, got {x}")
    return x


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _count(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None
