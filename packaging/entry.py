"""PyInstaller entry point of the bundled app: the same ``main`` as the ``busapp`` console script.

Kept outside the package so PyInstaller analyses ``busapp`` as a package (relative imports and
``busapp.__version__`` work as from source) rather than as a loose script.
"""

import multiprocessing
import sys

from busapp.app import main

if __name__ == "__main__":
    # GDCM decodes run in a spawned child (busapp.core.gdcm_isolated); in a frozen app the child
    # is this executable again, and freeze_support turns it into the worker instead of the GUI.
    multiprocessing.freeze_support()
    sys.exit(main())
