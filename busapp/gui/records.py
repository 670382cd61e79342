"""What the window knows about each opened file, per cine frame (Qt-free data, filled by the window).

A still image has one frame. For a cine, the frame shown is ``ImageRecord.frame``; every frame the
user has visited keeps its decoded pixels and its analysis (a small LRU cache, so stepping back is
instant and is not analysed or audited twice).
"""

from __future__ import annotations

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
