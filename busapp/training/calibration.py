"""What turns a graph's logits into the card's probabilities and outline rule: a softmax
temperature and the outline-withholding rule, each fitted on images the members never trained on.

Three sources, one ``Calibration`` each, so ``finalize`` writes the card the same way whatever
the source:

- ``on_validation``: members trained on the training split; temperature fitted on the final
  graph's validation outputs (the outline rule is chosen after export, on the same split);
- ``from_cv_report``: a refit on train + val, calibrated by the out-of-fold outputs of its own
  recipes' cross-validation (``busapp-train cv-report``);
- ``carried_over``: a refit (or a bundle keeping an earlier member) that takes an earlier card's
  temperature and outline rule as they are, saying whose they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from busapp.training.outline_rules import DICE_TOLERANCE, MASK_RULE_KEYS

log = logging.getLogger("busapp.training")

NOT_RISK = "They are not risk estimates for a patient."


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises the NLL on held-out outputs (grid search; one parameter)."""
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 400)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


@dataclass
class Calibration:
    temperature: float
    views: list[str]
    description: str  # the card's training.calibration
    limitation: str  # the card's limitation line on what the probabilities are
    # postprocessing keys (outline rule, mask threshold/keep) and their selection record; None:
    # the rule is chosen on the validation split once the bundle is exported
    outline: dict | None = None
    outline_selection: dict | None = None
    member_rule: str | None = None  # refits: why these members (no choice among them)
    fitted_on: list[str] | None = None  # the members' training splits when not train alone
    validation: dict | None = None  # the final graph's validation figures (train-only members)
    sections: dict = field(default_factory=dict)  # extra top-level card sections (cross_validation)


def on_validation(members: list, xv: np.ndarray, yv: np.ndarray) -> Calibration:
    """Temperature from the final graph's own validation outputs (test-time views and ensemble
    averaging included): log-probabilities differ from the averaged logits by a per-image constant."""
    from busapp.training.metrics import macro_f1
    from busapp.training.model import inference_model, test_time_views

    untempered = inference_model(members, 1.0)
    probs = np.concatenate([np.asarray(untempered(xv[i : i + 16], training=False)["probs"])
                            for i in range(0, len(xv), 16)])
    temperature = fit_temperature(np.log(np.maximum(probs, 1e-12)), yv)
    log.info("temperature %.3f (validation NLL, %d member(s))", temperature, len(members))
    pred = probs.argmax(axis=1)
    validation = {"accuracy": float((pred == yv).mean()), "macro_f1": macro_f1(yv, pred)}
    log.info("validation (final graph, model resolution): %s", validation)
    return Calibration(
        temperature=temperature, views=test_time_views(False),
        description="temperature scaling fitted on the validation split",
        limitation="Probabilities are calibrated on the validation split only; they are not risk estimates for a patient.",
        validation=validation)


def from_cv_report(report: dict, prior: dict, work_dirs: list) -> Calibration:
    """A refit calibrated by its recipes' cross-validation: the report's temperature, views and
    outline rule, fitted on all of train + val by models that never saw the image in question."""
    from busapp.training.crossval import recipes

    if recipes(work_dirs) != report["recipes"]:
        raise ValueError("the cross-validation report was made with other recipes than these members'")
    if len(report["per_fold"]) != report["folds"]:
        raise ValueError("the cross-validation report does not cover every fold")
    n = report["n_images"]
    outline = {k: report["outline_rule"][k] for k in MASK_RULE_KEYS}
    return Calibration(
        temperature=float(report["temperature"]), views=_views(report, prior),
        description=(f"temperature fitted on the out-of-fold outputs of {report['folds']}-fold cross-validation of "
                     f"these members' recipes over train + val ({n} images, each predicted by the fold's runs that "
                     "never trained on it, averaged as in this graph)"),
        limitation=("Probabilities use a temperature fitted on cross-validation runs, which trained on a quarter "
                    "fewer images than these members and may be less confident than they are (see the test ECE). "
                    + NOT_RISK),
        outline=outline,
        outline_selection={
            "rule": (f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best Dice, "
                     f"on the {n} out-of-fold outputs ({report['n_normal']} normal) of the members' "
                     "cross-validation, at model resolution"),
            "cross_validation": report["outline_rules"]},
        member_rule=("none among these runs: they refit on train + val (fixed epochs, last epoch kept) the recipes "
                     "of the cross-validation below, which were chosen on its out-of-fold figures "
                     "(docs/model-history.md); the test split was not read for the choice"),
        fitted_on=["train", "val"],
        sections={"cross_validation": {
            "what": ("each member recipe trained once per fold on the other folds of train + val (duplicate "
                     "groups whole), last epoch kept; every development image predicted by the runs that never "
                     "saw it; figures at model resolution, with the outline rule chosen on them (see mask_rules_selection)"),
            **{k: report[k] for k in ("folds", "runs", "n_images", "n_normal", "figures",
                                      "figures_without_outline_rule", "per_fold")}}})


def carried_over(prior: dict) -> Calibration:
    """A refit taking ``prior``'s temperature, views and outline rule as they are. If ``prior`` was
    itself calibrated on cross-validation, they were fitted for its members, not these: the case of
    a bundle keeping one earlier member (``extract-members``) beside a new one."""
    who = f"{prior['name']} {prior['version']}"
    post = prior["postprocessing"]
    prior_cv = prior.get("cross_validation")
    carried = post.get("mask_rules_selection", {})
    # the earlier card's record of the choice, its table included where the card still holds one
    selection = {"rule": f"carried over from {who}, chosen there by: {carried.get('rule', 'the validation split')}",
                 **{k: v for k, v in carried.items() if k != "rule"}}
    outline = {k: post.get(k) for k in MASK_RULE_KEYS}
    outline.update({k: post[k] for k in ("mask_threshold", "mask_keep", "min_area_fraction") if k in post})
    if prior_cv is not None:
        description = (f"temperature carried over from {who}, which fitted it on the out-of-fold outputs of "
                       f"{prior_cv.get('folds', '?')}-fold cross-validation of its own members' recipes "
                       f"({prior_cv.get('n_images', '?')} images); no out-of-fold outputs exist for these members "
                       "together, so nothing was refitted")
        limitation = (f"Probabilities use the temperature of {who}, fitted on cross-validation of its members' "
                      f"recipes, not of these members together (see the test ECE). {NOT_RISK}")
        member_rule = (f"none among these runs: they are the members given, each a refit on train + val or a member "
                       f"of an earlier bundle (busapp-train extract-members), chosen as docs/model-history.md says; "
                       f"the temperature and outline rule are {who}'s, nothing was fitted on data they saw")
    else:
        description = (f"temperature carried over from {who} (fitted on the validation split with members trained "
                       "on train only); these members trained on val, so nothing was refitted")
        limitation = ("Probabilities use a temperature fitted on the validation split for members trained on the "
                      "training split only; these members also trained on validation and are somewhat more "
                      f"confident (see the test ECE). {NOT_RISK}")
        member_rule = (f"none: the runs refit the member recipes of {who} on train + val (fixed epochs, last epoch "
                       "kept); nothing was chosen on data they saw")
    return Calibration(temperature=float(post["temperature"]), views=_views(None, prior), description=description,
                       limitation=limitation, outline=outline, outline_selection=selection,
                       member_rule=member_rule, fitted_on=["train", "val"])


def _views(report: dict | None, prior: dict | None) -> list[str]:
    """The test-time views the calibration was fitted with: the report's, else the prior card's."""
    from busapp.training.model import test_time_views

    views = (report or (prior or {}).get("architecture") or {}).get("test_time_views", test_time_views(False))
    if views not in (test_time_views(False), test_time_views(True)):
        raise ValueError(f"unknown test-time views in the cross-validation report: {views}")
    return views
