"""PyInstaller entry point of the bundled app: the same ``main`` as the ``busapp`` console script.

Kept outside the package so PyInstaller analyses ``busapp`` as a package (relative imports and
``busapp.__version__`` work as from source) rather than as a loose script.
"""

import sys

from busapp.app import main

if __name__ == "__main__":
    sys.exit(main())
