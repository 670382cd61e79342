"""The Qt desktop application. Everything here runs in the GUI thread except ``worker.py``."""
