"""When the app withholds the lesion outline: the card's ``suppress_mask_when_normal`` and
``suppress_mask_when_normal_at_least``, chosen on images the members never trained on (the
validation split here, out-of-fold outputs in ``crossval``) by one rule, ``pick_mask_rule``."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from busapp.core.model_bundle import CARD_NAME
from busapp.core.predictor import Predictor, lesion_mask, outline_suppressed
from busapp.core.preprocess import preprocess
from busapp.training.data import Record, load_image, load_mask
from busapp.training.metrics import dice_iou

log = logging.getLogger("busapp.training")

DICE_TOLERANCE = 0.01  # Dice we are willing to give up to keep normal images free of outlines
# Outline-withholding rules, simplest first: none; when the top class is normal (p >= the
# low-confidence line); when p(normal) reaches a threshold, whatever the top class.
SUPPRESS_CANDIDATES: tuple[tuple[bool, float | None], ...] = (
    (False, None), (True, None), (False, 0.5), (False, 0.4), (False, 0.3), (False, 0.2),
)
MASK_RULE_KEYS = ("suppress_mask_when_normal", "suppress_mask_when_normal_at_least")


def pick_mask_rule(rows: list[dict], dice_key: str, rate_key: str) -> dict:
    """Among candidates within ``DICE_TOLERANCE`` of the best Dice, the fewest outlined normal
    images; ties go to the simpler rule (earlier in ``SUPPRESS_CANDIDATES``). Returns the chosen
    row's rule keys."""
    best = max(r[dice_key] for r in rows)

    def key(r: dict) -> tuple:
        return r[rate_key], SUPPRESS_CANDIDATES.index((r["suppress_mask_when_normal"], r["suppress_mask_when_normal_at_least"]))

    chosen = min((r for r in rows if r[dice_key] >= best - DICE_TOLERANCE), key=key)
    return {k: chosen[k] for k in MASK_RULE_KEYS}


def choose_mask_rules(predictor: Predictor, records: list[Record], data_root: Path) -> tuple[dict, list[dict]]:
    """Choose the outline rule on the validation split (``pick_mask_rule``) through the exported
    model at original resolution. Returns the chosen settings and the whole table, for the card."""
    b = predictor.bundle
    cached = []
    for rec in records:
        img = load_image(data_root, rec)
        x, lb = preprocess(img, b.input_size)
        prob, probs = predictor.run(x)
        truth = None if rec.label == "normal" else load_mask(data_root, rec, img.shape)
        cached.append((prob, lb, probs, truth))
    table = []
    for when_normal, at_least in SUPPRESS_CANDIDATES:
        dice, nonempty = [], []
        for prob, lb, probs, truth in cached:
            withheld = outline_suppressed(probs, b.classes, b.low_confidence_below, when_normal, at_least) is not None
            m = lesion_mask(prob, lb, b.mask_threshold, b.min_area_fraction, withheld, b.mask_keep)
            if truth is None:
                nonempty.append(bool(m.any()))
            else:
                dice.append(dice_iou(m, truth)[0])
        table.append({"suppress_mask_when_normal": when_normal, "suppress_mask_when_normal_at_least": at_least,
                      "val_dice_mean": float(np.mean(dice)),
                      "val_normal_nonempty_rate": float(np.mean(nonempty)) if nonempty else 0.0})
    return pick_mask_rule(table, "val_dice_mean", "val_normal_nonempty_rate"), table


def reselect_mask_rules(bundle: Path, out_dir: Path, records_val: list[Record], data_root: Path) -> dict:
    """Copy a bundle whose members trained on the training split only and choose its outline rule
    again on the validation split. The copy's card loses its test metrics, which were measured
    under the old rule. A refit then carries this rule over (``finalize(rules_from=...)``)."""
    from busapp.training.card_writer import write_card

    card = json.loads((bundle / CARD_NAME).read_text())
    if card["training"].get("fitted_on", ["train"]) != ["train"]:
        raise ValueError(f"{bundle}: its members trained on {card['training']['fitted_on']}; "
                         "their validation outputs cannot choose rules")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in card["files"].values():
        shutil.copy2(bundle / f["path"], out_dir / f["path"])
    rules, table = choose_mask_rules(Predictor(bundle), records_val, data_root)
    card["postprocessing"].update(rules)
    card["postprocessing"]["mask_rules_selection"] = {
        "rule": f"fewest outlined normal images among candidates within {DICE_TOLERANCE} of the best val Dice "
                "(re-selected after the bundle was made)",
        "validation": table,
    }
    card.pop("metrics", None)
    write_card(out_dir / CARD_NAME, card)
    log.info("outline rule re-selected on validation for %s %s: %s", card["name"], card["version"], rules)
    return card
