"""The Qt desktop application. Everything here runs in the GUI thread except ``worker.py``."""

import sys


def _guard_none_refcount() -> None:
    """Work around PySide6 6.12.0 on Python 3.11: every call of a C++ method returning void
    decrements None's reference count without incrementing it first (Python >= 3.12 has an
    immortal None, so the bug is invisible there). None starts with a few thousand references,
    so after that many calls the interpreter aborts with "none_dealloc". Giving None a huge
    reference count makes it immortal in effect; it is never freed anyway.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 48  # ob_refcnt is the first field


_guard_none_refcount()
