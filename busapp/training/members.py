"""Ensemble members: load a run's checkpoint, its outputs as the exported graph computes them,
choose which runs to average (on validation only), and take a shipped bundle's members out again.

A bundle's ``.keras`` graph nests each member as ``busnet_<i>`` and its card keeps each member's
run name, configuration and checkpoint selection. That is all ``finalize`` reads from a run's
folder, so a member whose run folder is gone (a new checkout) can be paired with new runs
without training it again (``extract_members``).
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np

from busapp.core.atomic import write_text_atomic
from busapp.training.data import Record

log = logging.getLogger("busapp.training")

# Two members x mirror image keep one image well under 40 ms on LiteRT (three: ~37 ms) and the
# bundle under 300 MB; finalize --max-members raises it.
MAX_MEMBERS = 2


def run_config(work_dir: Path) -> dict:
    return json.loads((work_dir / "config.json").read_text())


def load_member(work_dir: Path, index: int):
    """The kept checkpoint of one training run, built as that run's config says."""
    from busapp.training.model import build_busnet

    c = run_config(work_dir)
    # Configs from before MixStyle have no key; the layer holds a seed state, so the graph must match.
    member = build_busnet(c["size"], pretrained=False, frozen_blocks=c["frozen_blocks"], lesion_pool=c["lesion_pool"],
                          mixstyle=c.get("mixstyle", False))
    member.load_weights(work_dir / "best.weights.h5")
    member.name = f"busnet_{index}"  # unique names: the members are nested in one graph
    return member


def classifier_description(work_dirs: list[Path]) -> str:
    plain = "global average pool of the 1280-channel head, dropout 0.3, dense 3"
    pooled = ("global average pool of the 1280-channel head, concatenated with the head averaged under the "
              "predicted lesion map and that map's peak and mean (no gradient into the map), dropout 0.3, dense 3")
    kinds = [run_config(wd)["lesion_pool"] for wd in work_dirs]
    if all(kinds):
        return pooled
    if not any(kinds):
        return plain
    return "; ".join(f"{wd.name}: {pooled if k else plain}" for wd, k in zip(work_dirs, kinds, strict=True))


def member_outputs(member, x: np.ndarray, zoom_in: bool = False, mirror: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mask and class logits of one member, averaged over the image and its mirror (and with
    ``zoom_in`` its enlarged centre), as the exported graph does, with the graph's own layers.
    ``mirror=False``: the image alone, as a one-view graph (``inference_model(flip_tta=False)``)."""
    from busapp.training.fit import predict_logits
    from busapp.training.model import CoverageAverage, ZoomIn, ZoomOut

    mask, logits = predict_logits(member, x)
    if not mirror:
        if zoom_in:
            raise ValueError("the zoomed view is only built beside the mirror")
        return mask, logits
    mask_m, logits_m = predict_logits(member, x[:, :, ::-1])
    if not zoom_in:
        return (mask + mask_m[:, :, ::-1]) / 2, (logits + logits_m) / 2
    mask_z, logits_z = predict_logits(member, np.asarray(ZoomIn()(x)))
    mask = np.asarray(CoverageAverage(2)([mask, mask_m[:, :, ::-1], np.asarray(ZoomOut()(mask_z))]))
    return mask, (logits + logits_m + logits_z) / 3


def choose_members(
    outputs: list[tuple[np.ndarray, np.ndarray]], names: list[str], mv: np.ndarray, yv: np.ndarray,
    max_members: int = MAX_MEMBERS,
) -> tuple[list[int], list[dict]]:
    """Which training runs to average: every subset of at most ``max_members`` candidates, scored
    on the validation split with the checkpoint score (macro-F1 + Dice) of their averaged logits
    (``outputs``: each candidate's ``member_outputs``). Ties go to fewer members. Returns the
    chosen indices and the table, for the card."""
    from busapp.training.fit import score_outputs

    table = []
    for k in range(1, min(max_members, len(outputs)) + 1):
        for subset in itertools.combinations(range(len(outputs)), k):
            mask = np.mean([outputs[i][0] for i in subset], axis=0)
            logits = np.mean([outputs[i][1] for i in subset], axis=0)
            table.append({"members": [names[i] for i in subset], "indices": list(subset),
                          **score_outputs(mask, logits, mv, yv)})
    best = max(table, key=lambda r: (round(r["val_score"], 6), -len(r["indices"])))
    for row in table:
        log.info("members %s: %s", row["members"], {k: round(v, 4) for k, v in row.items() if k.startswith("val_")})
    return best["indices"], [{k: v for k, v in r.items() if k != "indices"} for r in table]


def compare_runs(
    work_dirs: list[Path], records_val: list[Record], data_root: Path, max_members: int = MAX_MEMBERS
) -> tuple[list, list[int], list[dict]]:
    """Load each run's kept checkpoint and score every candidate ensemble on the validation split
    (never the test split: ``busapp-train compare`` uses this to weigh runs before finalizing).
    Returns the loaded members, the chosen indices and the table."""
    from busapp.training.dataset import cached_arrays

    sizes = {run_config(wd)["size"] for wd in work_dirs}
    if len(sizes) != 1:
        raise ValueError(f"every training run to combine must have the same input size, got {sorted(sizes)}")
    loaded = [load_member(wd, i) for i, wd in enumerate(work_dirs)]
    xv, mv, yv = cached_arrays(data_root, records_val, sizes.pop(), work_dirs[0] / "cache")
    outputs = [member_outputs(m, xv) for m in loaded]
    chosen, table = choose_members(outputs, [wd.name for wd in work_dirs], mv, yv, max_members)
    log.info("members chosen on validation: %s", [work_dirs[i].name for i in chosen])
    return loaded, chosen, table


def extract_members(bundle: Path, out_root: Path) -> list[Path]:
    """Write ``out_root/<run name>/`` (config.json, best.json, best.weights.h5) for each member
    of ``bundle``, in the card's order; returns those folders."""
    import keras

    import busapp.training.model  # noqa: F401  (registers the graph's custom layers)

    card = json.loads((bundle / "card.json").read_text())
    members = card["training"]["members"]
    graph = keras.saving.load_model(bundle / card["files"]["keras"]["path"], compile=False)
    folders = []
    for i, member in enumerate(members):
        folder = out_root / member["work_dir"]
        folder.mkdir(parents=True, exist_ok=True)
        graph.get_layer(f"busnet_{i}").save_weights(folder / "best.weights.h5")
        write_text_atomic(folder / "config.json", json.dumps(member["config"], indent=1))
        selection = {**member["selection"], "extracted_from": f"{card['name']} {card['version']}"}
        write_text_atomic(folder / "best.json", json.dumps(selection, indent=1))
        folders.append(folder)
    return folders
