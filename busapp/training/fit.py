"""Fitting busnet: losses, the validation callback and a resumable ``fit``."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from busapp.training.data import DATASETS, Record
from busapp.training.metrics import dice_per_image, macro_f1

log = logging.getLogger("busapp.training")


@dataclass
class FitConfig:
    size: int = 256
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 6e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.05
    seed: int = 20261124
    pretrained: bool = True
    frozen_blocks: int = 1
    # Normal images are ~13% of the training split; repeating them teaches the decoder harder that
    # an image can have no lesion (empty masks) and lifts normal sensitivity.
    normal_oversample: int = 1
    # Classifier also pools the features under the predicted lesion (model.LesionPool).
    lesion_pool: bool = False
    # Augmentation strength, a key of dataset.AUGMENT.
    augment: str = "standard"
    # MixStyle in the encoder (busapp.training.mixstyle): feature statistics mixed between the
    # batch's images in training, so the classifier leans less on a scanner's style.
    mixstyle: bool = False
    # Repeat the images of the smaller training sites until each site has as many as the largest,
    # so that no one scanner dominates what "malignant" looks like.
    site_balance: bool = False
    # The data sets the run trains on (all by default); fewer is a cross-site check
    # (``busapp-train site-report``), never a shipped member.
    datasets: tuple[str, ...] = DATASETS


def dice_loss(y_true, y_logits):
    """1 - soft Dice per image, averaged over the images that have a lesion: the same unit as
    the reported metric (a batch-wide Dice lets large lesions drown small ones). Normal images
    are left to the cross-entropy term, which pushes their masks to empty."""
    from keras import ops

    p = ops.sigmoid(y_logits)
    axes = (1, 2, 3)
    inter = ops.sum(p * y_true, axis=axes)
    denom = ops.sum(p, axis=axes) + ops.sum(y_true, axis=axes)
    has_lesion = ops.cast(ops.sum(y_true, axis=axes) > 0, "float32")
    dice = (2.0 * inter + 1.0) / (denom + 1.0)
    return ops.sum(has_lesion * (1.0 - dice)) / ops.maximum(ops.sum(has_lesion), 1.0)


def mask_loss(y_true, y_logits):
    from keras import ops

    bce = ops.mean(ops.binary_crossentropy(y_true, y_logits, from_logits=True))
    return bce + dice_loss(y_true, y_logits)


def site_balanced_index(sites: list[str], seed: int) -> np.ndarray:
    """Indices that repeat each site's images until it has as many as the largest site: whole
    copies, then a seeded draw without replacement for the remainder (no image thrice while
    another of its site is there once too few)."""
    rng = np.random.default_rng(seed)
    names = np.asarray(sites)
    largest = max(int((names == s).sum()) for s in set(sites))
    parts = []
    for s in sorted(set(sites)):
        own = np.flatnonzero(names == s)
        copies, rest = divmod(largest, len(own))
        parts += [np.tile(own, copies), rng.choice(own, rest, replace=False)]
    return np.sort(np.concatenate(parts))


def predict_logits(model, x: np.ndarray, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    masks, logits = [], []
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size], training=False)
        masks.append(np.asarray(out["mask_logits"]))
        logits.append(np.asarray(out["class_logits"]))
    return np.concatenate(masks), np.concatenate(logits)


def validation_score(model, x: np.ndarray, m: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Macro-F1 and lesion Dice (at model resolution) on the validation set; their sum selects
    the checkpoint we keep (and, in finalize, the ensemble members)."""
    return score_outputs(*predict_logits(model, x), m, y)


def score_outputs(mask_logits: np.ndarray, logits: np.ndarray, m: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = (mask_logits > 0)[..., 0]
    truth = m[..., 0] > 0.5
    lesion = y > 0
    dice = dice_per_image(pred, truth)
    f1 = macro_f1(y, logits.argmax(axis=1))
    acc = float((logits.argmax(axis=1) == y).mean())
    d = float(dice[lesion].mean())
    return {"val_macro_f1": f1, "val_accuracy": acc, "val_dice": d, "val_score": f1 + d}


def fit(records_train: list[Record], records_val: list[Record], data_root: Path, work_dir: Path, cfg: FitConfig,
        keep_last: bool = False, run_eagerly: bool = False):
    """Train, resuming from ``work_dir`` if a previous run was interrupted. Returns the model with
    the best validation weights loaded. With ``keep_last`` (a cross-validation fold, whose held-out
    outputs must not have chosen the checkpoint) or with no validation records (a refit on
    train + val, the recipe fixed beforehand) the last epoch's weights are kept instead.
    ``run_eagerly``: no graph for the train step; slower per step, but tracing that graph costs
    ~15 s, most of a smoke test's few steps. Not part of the recipe (not recorded in config.json)."""
    import keras

    from busapp.training.dataset import cached_arrays, make_training_data
    from busapp.training.model import build_busnet

    work_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    # What trained it, beside the recipe: a run on a lent GPU (JAX) draws other random numbers.
    trained_with = {"keras": keras.__version__, "backend": keras.backend.backend()}
    (work_dir / "config.json").write_text(json.dumps({**asdict(cfg), "trained_with": trained_with}, indent=2))

    t0 = time.time()
    xt, mt, yt = cached_arrays(data_root, records_train, cfg.size, work_dir / "cache")
    refit = not records_val
    keep_last = keep_last or refit
    if not refit:
        xv, mv, yv = cached_arrays(data_root, records_val, cfg.size, work_dir / "cache")
    if cfg.site_balance:
        idx = site_balanced_index([r.dataset for r in records_train], cfg.seed)
        xt, mt, yt = (a[idx] for a in (xt, mt, yt))
        log.info("site balance: %d images -> %d", len(records_train), len(idx))
    if cfg.normal_oversample > 1:
        extra = np.repeat(np.flatnonzero(yt == 0), cfg.normal_oversample - 1)
        xt, mt, yt = (np.concatenate([a, a[extra]]) for a in (xt, mt, yt))
    log.info("data: %d train (normal x%d), %d val images at %d px (%.0f s)",
             len(xt), cfg.normal_oversample, len(records_val), cfg.size, time.time() - t0)

    model = build_busnet(cfg.size, pretrained=cfg.pretrained, frozen_blocks=cfg.frozen_blocks, lesion_pool=cfg.lesion_pool,
                         mixstyle=cfg.mixstyle, seed=cfg.seed)
    steps = max(1, len(xt) // cfg.batch_size)
    warmup = min(cfg.warmup_epochs * steps, max(0, cfg.epochs * steps - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.05,
        decay_steps=max(1, cfg.epochs * steps - warmup),
        warmup_target=cfg.learning_rate,
        warmup_steps=warmup,
        alpha=0.02,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss={
            "mask_logits": mask_loss,
            "class_logits": keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.label_smoothing),
        },
        metrics={"class_logits": [keras.metrics.CategoricalAccuracy(name="acc")]},
        run_eagerly=run_eagerly,
    )

    best_path = work_dir / "best.weights.h5"
    state_path = work_dir / "best.json"

    class KeepBest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            score = {} if refit else validation_score(self.model, xv, mv, yv)
            if keep_last:
                why = "last epoch (refit without a validation split)" if refit else "last epoch (fixed recipe)"
                state = {"epoch": epoch + 1, "selection": why, **score} if epoch + 1 == cfg.epochs else None
            else:
                best = json.loads(state_path.read_text()) if state_path.exists() else {"val_score": -1}
                state = {"epoch": epoch + 1, **score} if score["val_score"] > best["val_score"] else None
            if state is not None:
                tmp = work_dir / "best.tmp.weights.h5"
                self.model.save_weights(tmp)
                tmp.replace(best_path)
                state_path.write_text(json.dumps(state, indent=2))
            if score:
                line = " ".join(f"{k}={v:.4f}" for k, v in score.items())
                log.info("epoch %d: %s%s", epoch + 1, line, " (best)" if state is not None and not keep_last else "")
                if logs is not None:
                    logs.update(score)

    callbacks = [
        KeepBest(),  # before the backup, so a resumed run never loses a best checkpoint
        keras.callbacks.BackupAndRestore(str(work_dir / "backup")),
        keras.callbacks.CSVLogger(str(work_dir / "history.csv"), append=True),
    ]
    model.fit(
        make_training_data(xt, mt, yt, cfg.batch_size, cfg.seed, cfg.augment),
        epochs=cfg.epochs,
        shuffle=False,  # the batches are shuffled (seeded) by make_training_data; Keras would only warn
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,  # a bar on a terminal, a line per epoch in a log
    )
    model.load_weights(best_path)
    log.info("fit done in %.0f s; best %s", time.time() - t0, state_path.read_text().replace("\n", " "))
    return model
