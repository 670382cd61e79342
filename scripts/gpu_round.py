"""One round of training on a lent GPU machine, in one call: runs in parallel, then reports.

    KERAS_BACKEND=jax python3 scripts/gpu_round.py PLAN.json --data PACKED_ROOT --out OUT --deadline S

The device machine has JAX but no TensorFlow, a 64 MiB working tree and a few minutes; so the
data come packed (``scripts/pack_dev_data.py``), every run of the plan starts at once as its own
``busapp-train fit`` process on the one GPU, and the ``cv-report`` figures are computed there.
What comes back is small: one archive with the reports and each run's config, logs and history,
a summary, and the weights (model only, no optimizer state) of the runs the plan names in ``bring_back``.

PLAN.json: {"runs": {NAME: [fit arguments, without --epochs]}, "epochs": [E, smaller E, ...],
            "reports": {NAME: [run names]}, "bring_back": [run names],
            "report_args": [more cv-report arguments], "zoom_in": true}

"zoom_in" (default true) gives every report the enlarged-centre view (``cv-report --zoom-in``);
false scores image + mirror only, the views a larger input can afford within 40 ms.

A leave-one-site-out round (busnet 2's gate, docs/busnet2-plan.md) comes as
            {"loso": {"recipes": [R, ...], "sites": [held-out sites; default all three],
                      "all": [recipes whose all-sites run is trained too]}, "epochs": [E, ...]}
Run NAME is RECIPE-SITE (RECIPE-all). Each held-out run, once trained, predicts its site's
development images with both views there (``loso_eval predict``, from the packed data's
full-size masks), and what comes back per run is its ``loso.json``, config, history and
held-out outputs (in runs.tar.gz, a few hundred kB each): the gate is read on this machine
(``loso_eval gate``). The all-sites runs bring their weights back for a release. Epochs other
than the recipe's own make another recipe: the summary says which were trained.

How fast the machine trains is not known before the call, so the epochs come as a ladder fixed
in the plan: all runs start with the first; once every run has timed a few epochs, a run that
would miss the deadline stops them all, and they start again with the largest number of epochs
that the measured pace fits (compile time included). A run or report that has not finished by
the deadline is left out, and the summary says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import h5py

# Run as a script from anywhere: the project's own modules (the site names) from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from busapp.training.data import SITES

CLI = [sys.executable, "-m", "busapp.training.cli"]


def weights_only(src: Path, dst: Path) -> None:
    """A copy of a Keras weights file without the optimizer's slots (a third of the size)."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for k, v in a.attrs.items():
            b.attrs[k] = v
        for k in a:
            if k != "optimizer":
                a.copy(a[k], b, name=k)


def fit_commands(plan: dict, data: Path, work: Path) -> dict[str, list[str]]:
    """{run name: its training command without --epochs}: the plan's cross-validation runs, or
    the leave-one-site-out runs of its ``loso`` recipes."""
    if "loso" not in plan:
        return {name: [*CLI, "fit", "--data", str(data), "--work-dir", str(work / name), *fit_args]
                for name, fit_args in plan["runs"].items()}
    loso = plan["loso"]
    cmds = {}
    for recipe in loso["recipes"]:
        for site in loso.get("sites", SITES):
            cmds[f"{recipe}-{site}"] = [*CLI, "loso-fit", "--recipe", recipe, "--held-out", site, "--data", str(data),
                                        "--work-dir", str(work / f"{recipe}-{site}")]
    for recipe in loso.get("all", []):
        cmds[f"{recipe}-all"] = [*CLI, "loso-fit", "--recipe", recipe, "--data", str(data),
                                 "--work-dir", str(work / f"{recipe}-all")]
    return cmds


def predict_command(data: Path, run_dir: Path) -> list[str]:
    """A held-out run's outputs with both test-time views, one after the other."""
    pred = shlex.join([sys.executable, "-m", "busapp.training.loso_eval", "--data", str(data), "predict"])
    run = shlex.quote(str(run_dir))
    return ["bash", "-c", f"{pred} {run} && {pred} --views image {run}"]


def launch(runs: dict[str, list[str]], epochs: int, args: argparse.Namespace, env: dict) -> dict:
    procs = {}
    for name, cmd in runs.items():
        log = open(args.work / f"{name}.log", "w")  # the child writes to it until it ends
        procs[name] = subprocess.Popen([*cmd, "--epochs", str(epochs)], stdout=log, stderr=subprocess.STDOUT, env=env)
    return procs


def start_predictions(plan: dict, procs: dict, predicting: dict, args: argparse.Namespace, env: dict) -> None:
    """Held-out runs that finished training start predicting at once, while the others train."""
    if "loso" not in plan:
        return
    for name, pr in procs.items():
        if name in predicting or name.endswith("-all") or pr.poll() != 0:
            continue
        log = open(args.work / f"{name}.predict.log", "w")
        predicting[name] = subprocess.Popen(predict_command(args.data, args.work / name), stdout=log,
                                            stderr=subprocess.STDOUT, env=env)


def measure_pace(work: Path, procs: dict, start: float, seen: dict) -> dict[str, tuple[float, float]]:
    """{run: (seconds from start before its first epoch, seconds per epoch)} for the runs that have
    timed at least two epochs after their first (history.csv gains a row per epoch). ``seen``
    keeps (rows, seconds) as they change, between calls."""
    pace = {}
    for name in procs:
        hist = work / name / "history.csv"
        rows = max(0, len(hist.read_text().splitlines()) - 1) if hist.exists() else 0
        marks = seen.setdefault(name, [])
        if rows and (not marks or marks[-1][0] != rows):
            marks.append((rows, time.time() - start))
        if len(marks) >= 2 and marks[-1][0] - marks[0][0] >= 2:
            per_epoch = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
            pace[name] = (round(marks[0][1] - marks[0][0] * per_epoch, 1), round(per_epoch, 2))
    return pace


def finish(pace: dict[str, tuple[float, float]], epochs: int) -> float:
    """Seconds from launch until the slowest run would finish ``epochs`` epochs."""
    return max(ready + epochs * per_epoch for ready, per_epoch in pace.values())


def report_command(plan: dict, data: Path, work_dirs: list[Path]) -> list[str]:
    """The ``cv-report`` call over these runs: with the enlarged centre unless the plan says
    ``"zoom_in": false``, then the plan's ``report_args``."""
    zoom = ["--zoom-in"] if plan.get("zoom_in", True) else []
    cmd = [*CLI, "cv-report", *zoom, *plan.get("report_args", []), "--data", str(data), "--work-dir", str(work_dirs[0])]
    for wd in work_dirs[1:]:
        cmd += ["--ensemble-work-dir", str(wd)]
    return cmd


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/gpu-runs"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--deadline", type=float, required=True, help="seconds from start for the fits")
    p.add_argument("--report-seconds", type=float, default=60, help="kept back from --deadline for the reports")
    args = p.parse_args()
    plan = json.loads(args.plan.read_text())
    t0 = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Many processes share one GPU: each takes memory as it needs it instead of 75% up front.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

    summary: dict = {"runs": {}, "reports": {}, "epochs_tried": [], "pace_s": {}}
    stop_at = t0 + args.deadline - args.report_seconds
    ladder = list(plan["epochs"])
    commands = fit_commands(plan, args.data, args.work)
    predicting: dict = {}
    while True:
        epochs = ladder.pop(0)
        summary["epochs_tried"].append(epochs)
        procs, start, seen, pace = launch(commands, epochs, args, env), time.time(), {}, {}
        missed = False
        while any(pr.poll() is None for pr in procs.values()) and time.time() < stop_at and not missed:
            time.sleep(5)
            start_predictions(plan, procs, predicting, args, env)
            pace = measure_pace(args.work, procs, start, seen)
            missed = bool(ladder) and len(pace) == len(procs) and start + finish(pace, epochs) > stop_at
        summary["pace_s"][epochs] = pace  # (seconds before the first epoch, seconds per epoch) by run
        if not missed:
            break
        for pr in procs.values():
            pr.kill()
            pr.wait()
        for pr in predicting.values():
            pr.kill()
            pr.wait()
        predicting.clear()
        for name in commands:
            shutil.rmtree(args.work / name, ignore_errors=True)
        left = stop_at - time.time()
        ladder = [e for e in ladder if finish(pace, e) < left][:1] or ladder[-1:]
        print(f"{epochs} epochs would miss the deadline (pace {json.dumps(pace)}); {ladder[0]} next", flush=True)
    summary["epochs"] = epochs
    for name, pr in procs.items():
        if pr.poll() is None:
            pr.kill()
        rc = pr.wait()
        best = args.work / name / "best.json"
        done = rc == 0 and best.exists()
        summary["runs"][name] = {"rc": rc, "done": done, **({"best": json.loads(best.read_text())} if done else {})}
    print(f"fits over at {time.time() - t0:.0f} s: "
          f"{sum(r['done'] for r in summary['runs'].values())}/{len(procs)} done", flush=True)
    start_predictions(plan, procs, predicting, args, env)
    while any(pr.poll() is None for pr in predicting.values()) and time.time() < t0 + args.deadline:
        time.sleep(2)
    for name, pr in predicting.items():
        if pr.poll() is None:
            pr.kill()
        rc = pr.wait()
        summary["runs"][name]["predicted"] = rc == 0 and (args.work / name / "held_out_image.npz").exists()

    reports = {}
    for name, runs in plan.get("reports", {}).items():
        if not all(summary["runs"].get(r, {}).get("done") for r in runs):
            summary["reports"][name] = "not run: a run did not finish"
            continue
        cmd = report_command(plan, args.data, [args.work / r for r in runs])
        (args.work / "reports").mkdir(exist_ok=True)
        with open(args.work / "reports" / f"{name}.json", "w") as out, open(args.work / f"{name}.err", "w") as err:
            reports[name] = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
    while any(pr.poll() is None for pr in reports.values()) and time.time() < t0 + args.deadline:
        time.sleep(2)
    for name, pr in reports.items():
        if pr.poll() is None:
            pr.kill()
        rc = pr.wait()
        summary["reports"][name] = "done" if rc == 0 else f"failed or stopped (rc {rc})"
        if rc != 0:
            (args.work / "reports" / f"{name}.json").unlink()

    bring_back = plan.get("bring_back", []) + [n for n in commands if "loso" in plan and n.endswith("-all")]
    for name in bring_back:
        if summary["runs"].get(name, {}).get("done"):
            weights_only(args.work / name / "best.weights.h5", args.out / f"{name}.weights.h5")
    with tarfile.open(args.out / "runs.tar.gz", "w:gz") as tar:
        for f in sorted(args.work.rglob("*")):
            if f.is_file() and f.suffix in (".json", ".log", ".csv", ".err", ".npz") \
                    and "cache" not in f.relative_to(args.work).parts:
                tar.add(f, arcname=str(f.relative_to(args.work)))
    summary["seconds"] = round(time.time() - t0)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
