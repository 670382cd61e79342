"""Wording of background-work exceptions for the user (the worker hands over the exception object).

Expected failures carry their own one-sentence message (``ImageLoadError``, a model bundle error);
anything else is a bug or an environment problem: it is logged with its traceback and the user
gets the file name and the exception's type, never a raw traceback.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _log_unexpected(what: str, e: BaseException) -> None:
    log.error("%s failed", what, exc_info=(type(e), e, e.__traceback__))


def load_error_text(e: BaseException, name: str) -> str:
    """The file could not be opened (read, decoded or hashed)."""
    from busapp.core.imageio import ImageLoadError

    if isinstance(e, ImageLoadError):
        return str(e)
    if isinstance(e, OSError):
        return f"{name}: the file could not be read from disk ({e.strerror or type(e).__name__})."
    _log_unexpected(f"opening {name}", e)
    return f"{name}: the image could not be opened ({type(e).__name__})."


def model_error_text(e: BaseException) -> str:
    """Why the model is not available (shown in the panel and the status bar)."""
    from busapp.core.model_bundle import ModelBundleError
    from busapp.gui.worker import ModelUnavailable

    cause = e.__cause__ if isinstance(e, ModelUnavailable) and e.__cause__ is not None else e
    if isinstance(cause, ModelBundleError):
        return str(cause)
    _log_unexpected("loading the model", cause)
    return f"The model could not be loaded ({type(cause).__name__}: {cause})."


def analysis_error_text(e: BaseException, name: str) -> str:
    """The image is shown but its analysis failed."""
    from busapp.core.imageio import ImageLoadError
    from busapp.gui.worker import ModelUnavailable

    if isinstance(e, ModelUnavailable):
        return f"Not analysed: {model_error_text(e)}"
    if isinstance(e, ImageLoadError):  # e.g. a cine frame that cannot be decoded
        return str(e)
    _log_unexpected(f"analysing {name}", e)
    return f"Analysis failed: {type(e).__name__}: {e}"
