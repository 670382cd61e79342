"""The installed Qt binding keeps Python's reference counts intact.

PySide6 6.12.0 under Python 3.11 dropped one reference to None per C++ call returning void, so the
app aborted ("deallocating None") after a few thousand calls. The pin in pyproject/constraints
avoids it; this test fails if a binding with that bug comes back.
"""

import sys

from PySide6.QtCore import QObject


def test_void_calls_do_not_leak_references_to_none():
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(2000):
        obj.setObjectName("busapp")
    assert abs(sys.getrefcount(None) - before) < 50
