"""What the window knows about each opened file, per cine frame (Qt-free data, filled by the window).

A still image has one frame. For a cine, the frame shown is ``ImageRecord.frame``; every frame the
user has visited keeps its decoded pixels and its analysis (a small LRU cache, so stepping back is
instant and is not analysed or audited twice).

Memory stays bounded with many images open: only the ``MAX_IMAGES_IN_MEMORY`` most recently opened
or shown still images keep their pixels, display image and overlay (``RecentImages``); the others
keep what the list and the panel need (thumbnail in the list, prediction with its mask,
measurements) and are decoded again, off the GUI thread, when shown (``ImageRecord.evicted``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from busapp.core.imageio import LoadedImage
    from busapp.core.predictor import Prediction
    from busapp.gui.worker import Analysis, DecodedImage

# Status of an opened image (the list shows them; ``image_list`` re-exports them for the widgets).
QUEUED, LOADING, ANALYSING, DONE, ERROR = "queued", "loading", "analysing", "done", "error"
MAX_CACHED_FRAMES = 24  # frames of one cine kept in memory (display image + mask + overlay each)
MAX_IMAGES_IN_MEMORY = 16  # still images whose pixels and overlays stay decoded (~4 MB each for BUSI)


@dataclass
class FrameState:
    decoded: DecodedImage | None = None
    analysis: Analysis | None = None
    error: str | None = None  # this frame could not be decoded or analysed


@dataclass
class ImageRecord:
    """One opened file and everything known about it so far."""

    job_id: int
    path: Path
    status: str = QUEUED
    error: str | None = None  # the file could not be opened / its first frame not analysed
    error_stage: str | None = None  # "load" or "analysis"
    frame: int = 0  # the frame shown, and the one the shown result belongs to
    frames: dict[int, FrameState] = field(default_factory=dict, repr=False)
    loaded_image: LoadedImage | None = field(default=None, repr=False)
    sha256: str | None = None
    evicted: bool = False  # pixels and overlays dropped from memory; decoded again when shown
    restoring: bool = False  # that decode has been asked for

    def drop_pixels(self) -> bool:
        """Free the decoded image and the overlay images of a finished still image (the analysis
        objects stay the same, so whoever holds one still holds the same result); True if done."""
        st = self.frames.get(0)
        if (self.evicted or self.restoring or self.n_frames != 1 or st is None or st.decoded is None
                or self.status not in (DONE, ERROR)):
            return False
        st.decoded = None
        if st.analysis is not None:
            st.analysis.fill = None
            st.analysis.outline = None  # type: ignore[assignment]  # rebuilt with the pixels
        self.loaded_image = None
        self.evicted = True
        return True

    def state(self, frame: int | None = None) -> FrameState:
        """The cache entry of ``frame`` (default: the shown one), created on first use, marked recent."""
        k = self.frame if frame is None else frame
        st = self.frames.pop(k, None) or FrameState()
        self.frames[k] = st  # re-insert: dict order is the LRU order
        while len(self.frames) > MAX_CACHED_FRAMES:
            old = next(f for f in self.frames if f not in (0, self.frame, k))
            del self.frames[old]
        return st

    @property
    def decoded(self) -> DecodedImage | None:
        st = self.frames.get(self.frame)
        return st.decoded if st else None

    @property
    def analysis(self) -> Analysis | None:
        st = self.frames.get(self.frame)
        return st.analysis if st else None

    @property
    def frame_error(self) -> str | None:
        st = self.frames.get(self.frame)
        return st.error if st else None

    @property
    def loaded(self) -> LoadedImage | None:
        return self.loaded_image

    @property
    def n_frames(self) -> int:
        return self.loaded_image.n_frames if self.loaded_image is not None else 1

    @property
    def prediction(self) -> Prediction | None:
        return self.analysis.prediction if self.analysis else None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, ERROR)


class RecentImages:
    """Which images keep their pixels: the ``limit`` most recently opened or shown (LRU)."""

    def __init__(self, limit: int = MAX_IMAGES_IN_MEMORY) -> None:
        self.limit = limit
        self._order: OrderedDict[int, None] = OrderedDict()

    def touch(self, job_id: int) -> list[int]:
        """``job_id`` is in use now; returns the jobs that fall out of the cache."""
        self._order.pop(job_id, None)
        self._order[job_id] = None
        out = []
        while len(self._order) > self.limit:
            out.append(self._order.popitem(last=False)[0])
        return out

    def forget(self, job_ids: list[int] | None = None) -> None:
        if job_ids is None:
            self._order.clear()
        for j in job_ids or ():
            self._order.pop(j, None)
