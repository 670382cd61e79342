"""The GDCM worker process and what DICOM loading imports (issue 28, items 10 and 12).

Each check runs in a fresh Python (a subprocess): what a process imports, and which processes
outlive it, cannot be seen from inside a pytest session that has imported everything already.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120, **kw)


def test_dicom_loading_imports_no_http_client():
    """pydicom imports requests (and urllib3, which opens a socket) at import: busapp stops that."""
    run = _python("""
        import json, sys
        import numpy as np
        from pathlib import Path
        import tempfile
        from busapp.core.imageio import load_image
        from busapp.core.dicomgen import make_dataset, write_dicom
        import pydicom, pydicom.pixels, pydicom.encaps
        p = write_dicom(make_dataset(np.zeros((8, 8), np.uint8)), Path(tempfile.mkdtemp()) / "x.dcm")
        assert load_image(p).frame(0).shape == (8, 8)
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("requests", "urllib3"))))
    """)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []


def test_http_client_still_importable_by_others():
    """The block is aimed at pydicom's optional import only, not at the whole process."""
    pytest.importorskip("requests")
    run = _python("""
        import busapp.core.imageio, pydicom
        import requests
        print(requests.__name__)
    """)
    assert run.returncode == 0 and run.stdout.strip() == "requests", run.stderr


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_gdcm_worker_and_resource_tracker_die_with_their_parent(how):
    """kill -9 (CLI) or SIGTERM (GUI) of the parent: no worker or resource tracker stays behind."""
    pytest.importorskip("gdcm")
    from pydicom.data import get_testdata_file

    lossless = get_testdata_file("SC_rgb_jpeg_gdcm.dcm")  # JPEG lossless: decoded by the GDCM worker only
    code = textwrap.dedent(f"""
        import sys, threading, time
        from busapp.core.imageio import load_image
        from busapp.core import gdcm_isolated
        # load in a short-lived thread, as the GUI and CLI do: the worker must not die with it
        t = threading.Thread(target=lambda: load_image({lossless!r}).frame(0)); t.start(); t.join()
        time.sleep(0.5)
        assert gdcm_isolated.worker_pids(), "the GDCM worker did not start"
        print("ready", gdcm_isolated.worker_pids()[0], flush=True)
        time.sleep(120)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        line = parent.stdout.readline()
        assert line.startswith("ready"), parent.stderr.read() if parent.poll() is not None else line
        worker = int(line.split()[1])
        kids = _children(parent.pid)
        assert worker in kids and _alive(worker)
        # the worker survived the end of the thread that first used it
        parent.send_signal(getattr(signal, how))
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.1)
        assert [k for k in kids if _alive(k)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_gdcm_time_limit_is_processor_time(monkeypatch):
    """The worker's limit counts its CPU seconds; waiting (a loaded machine) does not count."""
    from busapp.core import gdcm_isolated

    assert gdcm_isolated._cpu_seconds(os.getpid()) is not None
    monkeypatch.setattr(gdcm_isolated, "CHILD_TIMEOUT_S", 0.3)
    from concurrent.futures import Future

    # A future that completes after 0.8 s of wall time while the watched process uses no CPU.
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        fut: Future = Future()
        import threading

        threading.Timer(0.8, lambda: fut.set_result("done")).start()
        assert gdcm_isolated._wait(fut, [idle.pid]) == "done"  # 0.8 s > 0.3 s, but no CPU used
    finally:
        idle.kill()
        idle.wait()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            gdcm_isolated._wait(Future(), [busy.pid])
        assert time.monotonic() - t < 1.2 * 4  # stopped by CPU time, well before the wall limit
    finally:
        busy.kill()
        busy.wait()
