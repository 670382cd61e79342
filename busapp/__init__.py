"""busapp: offline decision support for reading breast ultrasound images."""

__version__ = "1.0.0"
APP_NAME = "busapp"
DISCLAIMER = (
    "Decision support only, not a diagnosis. Results come from a machine-learning model and "
    "must be read by a qualified clinician."
)
