"""Keep HTTP clients out of the process: busapp is offline and never needs one.

``import pydicom`` imports ``pydicom.data.download`` (for its test-file downloads), which imports
``requests`` if installed, and with it urllib3, which opens an IPv6 socket at import to probe the
host. busapp never downloads anything, so that one optional import is made to fail: pydicom then
records ``HAVE_REQUESTS = False`` and goes on. Every other importer of ``requests`` is untouched.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

__all__ = ["block_http_clients"]

_BLOCKED = frozenset({"requests", "urllib3"})
_IMPORTERS = frozenset({"pydicom.data.download"})


class _PydicomHttpBlocker(MetaPathFinder):
    """Fails ``import requests`` / ``urllib3`` only when pydicom's download module asks for it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in _BLOCKED:
            return None
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") in _IMPORTERS:
                raise ImportError(f"busapp is offline: {fullname} is not imported for pydicom")
            frame = frame.f_back
        return None


def block_http_clients() -> None:
    """Install the blocker once, before pydicom is first imported (idempotent)."""
    if not any(isinstance(f, _PydicomHttpBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _PydicomHttpBlocker())
