"""scripts/keep_loso_outputs.sh keeps what a later session needs of a round's finished held-out runs."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "keep_loso_outputs.sh"
KEPT = ("loso.json", "config.json", "history.csv", "held_out.npz", "held_out_image.npz")


def test_finished_held_out_runs_are_kept_and_the_rest_is_not(tmp_path):
    round_dir = tmp_path / "build" / "R9"
    for site, finished in (("busi", True), ("bus_uclm", False)):
        run = round_dir / site
        (run / "backup").mkdir(parents=True)
        for name in (*KEPT, "best.weights.h5", "backup/state.h5"):
            (run / name).write_text(name)
        if finished:
            (run / "done").touch()
    keep = tmp_path / "kept"
    subprocess.run(["bash", str(SCRIPT), str(round_dir)], check=True, env={**os.environ, "LOSO_KEEP_DIR": str(keep)})
    assert sorted(p.name for p in (keep / "R9" / "busi").iterdir()) == sorted(KEPT)
    assert not (keep / "R9" / "bus_uclm").exists()  # still training: nothing of it yet
