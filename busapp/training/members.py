"""A shipped bundle's members as training runs again, so a later bundle can reuse one.

A bundle's ``.keras`` graph nests each member as ``busnet_<i>`` and its card keeps each member's
run name, configuration and checkpoint selection. That is all ``finalize`` reads from a run's
folder, so a member whose run folder is gone (a new checkout) can be paired with new runs
without training it again.
"""

from __future__ import annotations

import json
from pathlib import Path

from busapp.core.atomic import write_text_atomic


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
