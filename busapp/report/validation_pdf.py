"""The site-validation report as a PDF, written by a small pure-Python writer (no Qt).

``busapp-cli validate`` must not import Qt, so this module draws with PDF operators directly: text
in the standard Helvetica fonts (every PDF reader has them; pypdf extracts the text), and vector
lines for the plots. Page 1: the verdict and the figures; page 2: ROC curve, reliability plot and
confusion matrix. Input: the dict ``core.site_validation.report_json`` returns.
"""

from __future__ import annotations

import datetime as _dt
import zlib
from typing import Any

from busapp import DISCLAIMER

A4 = (595.28, 841.89)
MARGIN = 50.0
# Helvetica advance widths (1/1000 em) for ASCII 32..126, from the standard AFM metrics.
_W = [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
      556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
      500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
      556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
      278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]


def text_width(s: str, size: float, bold: bool = False) -> float:
    w = sum(_W[ord(c) - 32] if 32 <= ord(c) <= 126 else 556 for c in s)
    return w * size / 1000 * (1.06 if bold else 1.0)


def wrap(s: str, width: float, size: float, bold: bool = False) -> list[str]:
    lines, cur = [], ""
    for word in s.split():
        t = f"{cur} {word}".strip()
        if cur and text_width(t, size, bold) > width:
            lines.append(cur)
            cur = word
        else:
            cur = t
    return [*lines, cur] if cur else lines


def _esc(s: str) -> bytes:
    b = s.replace("\u2013", "-").replace("\u2014", "-").replace("\u2265", ">=").replace("\u2264", "<=")
    raw = b.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


class Page:
    """One page's drawing operators; y runs down from the top (converted on output)."""

    def __init__(self) -> None:
        self.ops: list[bytes] = []

    def _y(self, y: float) -> float:
        return A4[1] - y

    def text(self, x: float, y: float, s: str, size: float = 10, bold: bool = False,
             rgb: tuple[float, float, float] = (0, 0, 0)) -> None:
        f = "F2" if bold else "F1"
        self.ops.append(b"BT %.3f %.3f %.3f rg /%s %.2f Tf %.2f %.2f Td (" % (*rgb, f.encode(), size, x, self._y(y))
                        + _esc(s) + b") Tj ET")

    def line(self, x0: float, y0: float, x1: float, y1: float, w: float = 0.8,
             rgb: tuple[float, float, float] = (0, 0, 0), dash: bool = False) -> None:
        d = b"[3 2] 0 d " if dash else b"[] 0 d "
        self.ops.append(d + b"%.3f %.3f %.3f RG %.2f w %.2f %.2f m %.2f %.2f l S" % (*rgb, w, x0, self._y(y0), x1,
                                                                                    self._y(y1)))

    def polyline(self, pts: list[tuple[float, float]], w: float = 1.2, rgb: tuple[float, float, float] = (0, 0, 0)) -> None:
        if len(pts) < 2:
            return
        path = b" ".join(b"%.2f %.2f %s" % (x, self._y(y), b"m" if i == 0 else b"l") for i, (x, y) in enumerate(pts))
        self.ops.append(b"[] 0 d %.3f %.3f %.3f RG %.2f w 1 j " % (*rgb, w) + path + b" S")

    def rect(self, x: float, y: float, w: float, h: float, fill: tuple[float, float, float] | None = None,
             stroke: tuple[float, float, float] | None = (0, 0, 0), lw: float = 0.6) -> None:
        op = b"B" if fill and stroke else (b"f" if fill else b"S")
        col = (b"%.3f %.3f %.3f rg " % fill if fill else b"") + (b"%.3f %.3f %.3f RG " % stroke if stroke else b"")
        self.ops.append(b"[] 0 d " + col + b"%.2f w %.2f %.2f %.2f %.2f re " % (lw, x, self._y(y + h), w, h) + op)

    def paragraph(self, x: float, y: float, s: str, width: float, size: float = 10, bold: bool = False,
                  rgb: tuple[float, float, float] = (0, 0, 0), leading: float = 1.3) -> float:
        """Wrapped text from top ``y``; returns the y below it."""
        for ln in wrap(s, width, size, bold):
            y += size * leading
            self.text(x, y, ln, size, bold, rgb)
        return y + size * 0.4


def pdf_bytes(pages: list[Page], title: str = "") -> bytes:
    """A minimal PDF 1.4 file: catalog, pages, two standard fonts, one compressed stream per page."""
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    add(b"")  # 1: catalog, filled below
    add(b"")  # 2: pages
    f1 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    f2 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    kids = []
    for p in pages:
        data = zlib.compress(b"\n".join(p.ops))
        c = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents %d 0 R "
                        b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>" % (*A4, c, f1, f2)))
    objs[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    info = add(b"<< /Title (" + _esc(title) + b") /Producer (busapp) >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, info, xref)
    return bytes(out)


# --- the report ------------------------------------------------------------------------------------

NAVY, GREY, RED, AMBER, GREEN = (0.12, 0.24, 0.43), (0.35, 0.35, 0.35), (0.68, 0.16, 0.12), (0.62, 0.38, 0.0), \
    (0.12, 0.45, 0.25)


def _fmt(f: dict[str, Any] | None, digits: int = 2) -> str:
    if not f or f.get("value") is None:
        return "-"
    s = f"{f['value']:.{digits}f}"
    if f.get("ci95"):
        s += f"  (95% CI {f['ci95'][0]:.{digits}f}-{f['ci95'][1]:.{digits}f})"
    if "k" in f:
        s += f"   {f['k']} of {f['n']}"
    return s


def _heading(p: Page, y: float, s: str) -> float:
    y += 22
    p.text(MARGIN, y, s, 12, True, NAVY)
    p.line(MARGIN, y + 4, A4[0] - MARGIN, y + 4, 0.8, NAVY)
    return y + 8


def _rows(p: Page, y: float, rows: list[tuple[str, str]], key_w: float = 190, size: float = 9.5) -> float:
    for k, v in rows:
        y += size * 1.45
        p.text(MARGIN, y, k, size, False, GREY)
        p.text(MARGIN + key_w, y, v, size, True)
    return y + 4


def _axes(p: Page, x: float, y: float, size: float, xlabel: str, ylabel: str) -> None:
    """A square plot frame with 0, 0.5, 1 ticks; (x, y) is its top-left corner."""
    p.rect(x, y, size, size, stroke=(0.3, 0.3, 0.3), lw=0.7)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        px, py = x + v * size, y + size - v * size
        p.line(px, y + size, px, y + size + 3, 0.5)
        p.line(x - 3, py, x, py, 0.5)
        if v in (0.0, 0.5, 1.0):
            p.text(px - 6, y + size + 13, f"{v:.1f}", 7.5, False, GREY)
            p.text(x - 20, py + 3, f"{v:.1f}", 7.5, False, GREY)
        if 0 < v < 1:
            p.line(px, y, px, y + size, 0.3, (0.85, 0.85, 0.85))
            p.line(x, py, x + size, py, 0.3, (0.85, 0.85, 0.85))
    p.text(x + size / 2 - text_width(xlabel, 8.5) / 2, y + size + 26, xlabel, 8.5)
    p.text(x - 34, y - 8, ylabel, 8.5)


def validation_pdf_bytes(d: dict[str, Any], generated: _dt.datetime | None = None) -> bytes:
    when = (generated or _dt.datetime.now()).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    W = A4[0] - 2 * MARGIN
    p1 = Page()
    p1.text(MARGIN, 62, "busapp - validation on this site's images", 16, True, NAVY)
    y = p1.paragraph(MARGIN, 70, DISCLAIMER, W, 9, True, AMBER)
    m = d.get("model", {})
    y = _rows(p1, y, [("Model", f"{m.get('name', '')} {m.get('version', '')}"),
                      ("Model file sha256", str(m.get("sha256", ""))[:32] + "..."),
                      ("Labels file sha256", str(d.get("labels_sha256", ""))[:32] + "..."),
                      ("Report generated", when),
                      ("Images", f"{d['n_images']} labelled: {d['n_malignant']} malignant, {d['n_benign']} benign, "
                                 f"{d['n_normal']} normal; {d['n_failed']} could not be analysed")], 130, 9)

    v = d["verdict"]
    colour = {"below": RED, "insufficient": AMBER, "consistent": GREEN}.get(v["status"], GREY)
    y = _heading(p1, y, "Verdict")
    lines = wrap(v["text"], W - 20, 10.5, True)
    h = len(lines) * 14 + 14
    p1.rect(MARGIN, y + 6, W, h, fill=(0.98, 0.97, 0.94), stroke=colour, lw=1.2)
    yy = y + 10
    for ln in lines:
        yy += 14
        p1.text(MARGIN + 10, yy, ln, 10.5, True, colour)
    y += h + 10

    y = _heading(p1, y, "Figures at the shipped rule")
    y = p1.paragraph(MARGIN, y, f"Rule: {d['rule']}.", W, 9, False, GREY)
    dice = d.get("dice") or {}
    y = _rows(p1, y, [
        ("Sensitivity (cancers called malignant)", _fmt(d["sensitivity"])),
        ("Specificity (benign lesions not called)", _fmt(d["specificity"])),
        ("Specificity incl. normal images", _fmt(d["specificity_with_normal"])),
        ("AUC benign vs malignant", _fmt(d["auc"], 3)),
        ("Calibration error (ECE, lesions)", "-" if d.get("ece") is None else f"{d['ece']:.3f}"),
        ("Lesion outline Dice (mean)", "-" if dice.get("mean") is None else f"{dice['mean']:.3f}  ({dice['n']} masks)"),
        ("Missed cancers", f"{d['missed_cancers']} (of which {d['missed_cancers_flagged_by_input_check']} had an "
                           "input warning)"),
    ])
    y = p1.paragraph(MARGIN, y, "Intervals: Wilson 95 % for sensitivity and specificity; AUC: percentile bootstrap "
                                f"({d['auc'].get('interval', '')}).", W, 8, False, GREY)
    ref = d.get("reference") or {}
    y = _heading(p1, y, "Compared with the model card")
    rrows = []
    for k in ("sensitivity", "specificity", "auc"):
        r = ref.get(k)
        if r:
            rrows.append((f"Card {k} ({r.get('site', '')})", _fmt(r, 3 if k == "auc" else 2)))
    y = _rows(p1, y, rrows or [("Card figures", "none to compare with")])
    if ref.get("source"):
        y = p1.paragraph(MARGIN, y, f"Reference: {ref['source']}.", W, 8.5, False, GREY)
    ic = d.get("input_check") or {}
    y = _heading(p1, y, "Input check (images unlike the training images)")
    y = _rows(p1, y, [(k.replace("_", " "), f"{v * 100:.1f} % of images") for k, v in ic.items() if v is not None]
              or [("warnings", "none")])
    p1.text(MARGIN, A4[1] - 30, f"Images are named by sha256 only unless the names were asked for. {when}. Page 1 of 2.",
            7.5, False, GREY)

    # page 2: plots
    p2 = Page()
    p2.text(MARGIN, 62, "ROC curve and calibration", 14, True, NAVY)
    size = 200
    x1, x2, top = MARGIN + 40, MARGIN + 40 + size + 70, 110
    _axes(p2, x1, top, size, "1 - specificity (benign)", "sensitivity")
    p2.line(x1, top + size, x1 + size, top, 0.6, (0.6, 0.6, 0.6), dash=True)
    roc = d.get("roc") or []
    p2.polyline([(x1 + fx * size, top + size - ty * size) for fx, ty in roc], 1.5, NAVY)
    s, sp = (d["sensitivity"] or {}).get("value"), (d["specificity"] or {}).get("value")
    if s is not None and sp is not None:
        cx, cy = x1 + (1 - sp) * size, top + size - s * size
        p2.rect(cx - 3, cy - 3, 6, 6, fill=RED, stroke=None)
        p2.text(cx + 6, cy + 10, "shipped rule", 7.5, False, RED)
    p2.text(x1 - 34, top - 22, "ROC, benign vs malignant", 9.5, True)
    _axes(p2, x2, top, size, "p(malignant), mean in bin", "share malignant")
    p2.line(x2, top + size, x2 + size, top, 0.6, (0.6, 0.6, 0.6), dash=True)
    rel = d.get("reliability") or []
    pts = [(x2 + b["mean_predicted"] * size, top + size - b["observed"] * size) for b in rel]
    p2.polyline(pts, 1.2, NAVY)
    for (px, py), b in zip(pts, rel, strict=True):
        r = 2 + min(5.0, b["n"] ** 0.5 / 2)
        p2.rect(px - r / 2, py - r / 2, r, r, fill=NAVY, stroke=None)
    p2.text(x2 - 34, top - 22, "Reliability (lesion images)", 9.5, True)

    y = top + size + 60
    y = _heading(p2, y, "Confusion matrix (top class; rows: label, columns: model)")
    conf = d.get("confusion") or {}
    classes = list(conf)
    cw, ch, x0 = 90, 20, MARGIN + 90
    y += 8
    for j, c in enumerate(classes):
        p2.text(x0 + j * cw + 8, y + 12, c, 9, True)
    for i, t in enumerate(classes):
        yy = y + (i + 1) * ch
        p2.text(MARGIN, yy + 14, t, 9, True)
        for j, c in enumerate(classes):
            n = conf[t][c]
            p2.rect(x0 + j * cw, yy, cw, ch, fill=(0.9, 0.95, 0.9) if t == c else None, stroke=(0.5, 0.5, 0.5), lw=0.5)
            p2.text(x0 + j * cw + 8, yy + 14, str(n), 9.5)
    y += (len(classes) + 1) * ch + 10
    p2.paragraph(MARGIN, y, "Per-image rows (sha256, label, probabilities, rule, band, input warnings, Dice) are in "
                            "the CSV beside this report. No image was copied.", W, 8.5, False, GREY)
    p2.text(MARGIN, A4[1] - 30, f"busapp validation report. {when}. Page 2 of 2.", 7.5, False, GREY)
    return pdf_bytes([p1, p2], title="busapp site validation")
