"""One number format and one wording for what the panel, the PDF and the exports say (Qt-free).

Issue 25: the panel said "5.66 mm" where the PDF said "5.7 mm", the PDF mixed "0.92" and "91.7 %",
and "Pixel size: pixel size unknown: ..." read badly. Every caller formats through here:

* lengths to 0.1 (mm or px), the precision a caliper reading has;
* areas to 0.1 below 100, whole numbers with thousands separators from 100;
* ratios and probabilities to two decimals, never as percentages;
* one sentence about where the pixel size came from.
"""

from __future__ import annotations

from typing import Any

USER_CALIBRATED = "user calibrated"  # == busapp.core.measure.USER_CALIBRATED


def length(v: float, unit: str) -> str:
    return f"{v:.1f} {unit}"


def area(v: float, unit: str) -> str:
    return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"


def ratio(v: float) -> str:
    return f"{v:.2f}"


def probability(p: float) -> str:
    return f"{p:.2f}"


def depth_to_width(m: Any) -> str:
    return ratio(m.depth_to_width) + (" (taller than wide)" if m.taller_than_wide else " (wider than tall)")


def measurement_rows(m: Any) -> list[tuple[str, str, str]]:
    """(key, label, value) of a LesionMeasurements, in the order every view shows them."""
    return [
        ("area", "Area", area(m.area, m.area_unit)),
        ("longest", "Longest diameter", length(m.longest_diameter, m.unit)),
        ("perpendicular", "Perpendicular diameter", length(m.perpendicular_diameter, m.unit)),
        ("dw", "Depth-to-width ratio", depth_to_width(m)),
    ]


def pixel_size_note(m: Any) -> str:
    """Where the pixel size came from, as one sentence (for a lesion that was measured)."""
    if m.spacing_source is None:
        return "Pixel size unknown, so sizes are in pixels (Tools \u203a Calibrate pixel size to measure in mm)."
    if m.spacing_source == USER_CALIBRATED:
        return "Pixel size USER CALIBRATED: from a line drawn by the user over the depth scale."
    return f"Pixel size from {m.spacing_source}."


def opened_summary(n_opened: int, n_failed: int) -> str:
    """After a set of files was opened: how many could be, and how many could not."""
    def images(n: int) -> str:
        return f"{n} image{'s' if n != 1 else ''}"

    if not n_failed:
        return f"Opened {images(n_opened)}."
    if not n_opened:
        return ("The file could not be opened." if n_failed == 1
                else f"None of the {n_failed} files could be opened.")
    files = f"{n_failed} file{'s' if n_failed != 1 else ''}"
    return f"Opened {images(n_opened)}; {files} could not be opened."


def duration(seconds: float | None) -> str:
    """Seconds as mm:ss or h:mm:ss (time left / taken by a batch), "--:--" when not known yet."""
    if seconds is None:
        return "--:--"
    h, rem = divmod(round(seconds), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
