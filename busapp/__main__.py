"""``python -m busapp``: the desktop app (same as the ``busapp`` command)."""

import sys

from busapp.app import main

sys.exit(main())
