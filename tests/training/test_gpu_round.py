"""scripts/gpu_round.py: the pace it measures, the rung it falls back to, and the weights it brings back."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_round.py"


@pytest.fixture(scope="module")
def gpu_round():
    pytest.importorskip("h5py")
    spec = importlib.util.spec_from_file_location("gpu_round", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pace_from_epochs_as_they_land(gpu_round, tmp_path, monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(gpu_round.time, "time", lambda: clock["now"])
    hist = tmp_path / "run" / "history.csv"
    hist.parent.mkdir()
    seen: dict = {}

    def at(seconds: float, epochs: int) -> dict:
        clock["now"] = seconds
        hist.write_text("epoch,loss\n" + "".join(f"{e},1.0\n" for e in range(epochs)))
        return gpu_round.measure_pace(tmp_path, {"run": None}, 0.0, seen)

    assert at(30, 1) == {}  # the first epoch carries the compile time: no pace yet
    assert at(34, 2) == {}
    pace = at(38, 3)  # 4 s an epoch after a 30 s first one
    assert pace == {"run": (26.0, 4.0)}
    assert gpu_round.finish(pace, 80) == 26.0 + 80 * 4.0
    assert gpu_round.finish({**pace, "slow": (20.0, 6.0)}, 10) == 80.0  # the slowest run decides


def test_weights_only_drops_the_optimizer_and_keeps_the_layers(gpu_round, tmp_path):
    import h5py

    src, dst = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    with h5py.File(src, "w") as f:
        f.attrs["note"] = "x"
        f.create_dataset("layers/conv/vars/0", data=np.arange(6.0))
        f.create_dataset("optimizer/vars/0", data=np.zeros(1000))
        f.create_dataset("vars/0", data=np.ones(2))
    gpu_round.weights_only(src, dst)
    with h5py.File(dst) as f:
        assert sorted(f) == ["layers", "vars"] and f.attrs["note"] == "x"
        np.testing.assert_array_equal(f["layers/conv/vars/0"][()], np.arange(6.0))


def test_report_views_follow_the_plan(gpu_round, tmp_path):
    """Plan E scores 320-px runs with image + mirror only; older plans keep the enlarged centre."""
    runs = [tmp_path / "a", tmp_path / "b"]
    old = gpu_round.report_command({}, tmp_path, runs)
    assert "--zoom-in" in old and old[-2:] == ["--ensemble-work-dir", str(runs[1])]
    plan_e = json.loads((SCRIPT.parent / "gpu_plans" / "plan-e-resolution.json").read_text())
    cmd = gpu_round.report_command(plan_e, tmp_path, runs)
    assert "--zoom-in" not in cmd and cmd[cmd.index("--work-dir") + 1] == str(runs[0])
    assert all("--size" in a and a[a.index("--size") + 1] == "320" for a in plan_e["runs"].values())


def test_loso_plan_names_one_run_per_recipe_and_site(gpu_round, tmp_path):
    plan = {"loso": {"recipes": ["R13", "R14"], "all": ["R13"]}, "epochs": [24]}
    cmds = gpu_round.fit_commands(plan, tmp_path / "pack", tmp_path / "work")
    assert sorted(cmds) == sorted([f"{r}-{s}" for r in ("R13", "R14") for s in gpu_round.SITES] + ["R13-all"])
    held = cmds["R14-bus_uclm"]
    assert held[held.index("--recipe") + 1] == "R14" and held[held.index("--held-out") + 1] == "bus_uclm"
    assert held[held.index("--work-dir") + 1] == str(tmp_path / "work" / "R14-bus_uclm")
    assert "--held-out" not in cmds["R13-all"] and "loso-fit" in cmds["R13-all"]
    # a plan of cross-validation runs is read as before
    cv = gpu_round.fit_commands({"runs": {"a": ["--fold", "0"]}}, tmp_path, tmp_path / "w")
    assert cv["a"][-2:] == ["--fold", "0"] and "fit" in cv["a"]


@pytest.mark.slow
def test_predict_command_gives_both_views_from_a_pack(gpu_round, tmp_path, data_root):
    """What a lent machine runs after each held-out fit, on the packed data it has instead of images."""
    pytest.importorskip("tensorflow")
    import subprocess
    from dataclasses import replace

    from busapp.training.data import records_for
    from busapp.training.dataset import pack_arrays
    from busapp.training.loso import SITE_RECIPE, loso_fit
    from busapp.training.loso_eval import load_outputs

    run = tmp_path / "R-busi"
    loso_fit("busi", data_root, run, replace(SITE_RECIPE, size=32, epochs=1, batch_size=4), limit=8, run_eagerly=True)
    dev = [r for s in ("train", "val") for r in records_for(s, data_root, datasets=("busi",))]
    pack_arrays(data_root, dev, 32, tmp_path / "pack")
    done = subprocess.run(gpu_round.predict_command(tmp_path / "pack", run), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    mirror, image = load_outputs(run / "held_out.npz"), load_outputs(run / "held_out_image.npz")
    assert len(mirror["keys"]) == len(image["keys"]) == len(dev) and set(mirror["sites"]) == {"busi"}
    assert not np.allclose(mirror["logits"], image["logits"])
