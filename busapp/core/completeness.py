"""Is a decoded PNG or JPEG whole? Checks for data that decoders silently fill in (issue 28, item 2).

Pillow refuses a file that simply stops early (``LOAD_TRUNCATED_IMAGES`` stays off), but two
kinds of damage decode "successfully":

- PNG whose compressed stream ends properly but holds fewer rows than the header declares
  (e.g. a header claiming 10000 x 10000 over 320 x 256 of data): Pillow leaves the rest black.
  ``png_missing_rows`` inflates the image data again, counting bytes without keeping them.
- JPEG cut short with an end-of-image marker appended: libjpeg warns ("premature end of data
  segment"), Pillow ignores warnings, and every block after the cut is flat grey.
  ``jpeg_incomplete`` finds it two ways: for sequential JPEG it decodes the scan once more
  without the final end marker into an image pre-filled with a sentinel, so rows that libjpeg
  could not produce from real data keep the sentinel where the normal decode shows fill; for
  progressive JPEG it checks that the scans present cover every coefficient to full precision
  (a file cut short loses its later scans).

Both return a short English reason, or None when the data is whole.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

__all__ = ["jpeg_incomplete", "png_missing_rows"]

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7: (x start, y start, x step, y step) of the seven passes
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_expected_bytes(w: int, h: int, bit_depth: int, colour_type: int, interlace: int) -> int:
    bits = bit_depth * _PNG_CHANNELS[colour_type]

    def size(pw: int, ph: int) -> int:
        return ph * (1 + (pw * bits + 7) // 8) if pw and ph else 0

    if not interlace:
        return size(w, h)
    return sum(size((w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def png_missing_rows(data: bytes) -> str | None:
    """None if the IDAT stream inflates to at least what IHDR declares, else the reason."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None  # not a PNG Pillow would have opened; nothing to check
    w, h, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour_type not in _PNG_CHANNELS:
        return None
    expected = _png_expected_bytes(w, h, bit_depth, colour_type, interlace)
    d = zlib.decompressobj()
    total, pos, step = 0, 8, 1 << 22
    try:
        while pos + 8 <= len(data) and total < expected:
            length = int.from_bytes(data[pos : pos + 4], "big")
            kind = data[pos + 4 : pos + 8]
            chunk = data[pos + 8 : pos + 8 + length]
            pos += 12 + length
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                continue
            buf = chunk
            while buf and total < expected and not d.eof:
                total += len(d.decompress(buf, step))
                buf = d.unconsumed_tail
    except zlib.error:
        return "its compressed image data is damaged"
    if total < expected:
        have = total / max(expected, 1)
        return f"it holds only {have:.0%} of the image data its header declares"
    return None


# --- JPEG -----------------------------------------------------------------------------------------

_SOF_SEQUENTIAL = {0xC0, 0xC1, 0xC5, 0xC9, 0xCD}  # baseline / extended (Huffman, arithmetic)
_SOF_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field
_PADDING = b"\x55" * 4096  # bits 0101...: never a marker, and not what libjpeg fills in (zero bits)


def _jpeg_scans(data: bytes) -> tuple[int | None, list[int], list[tuple[list[int], int, int, int]]] | None:
    """(SOF marker, component ids, scans as (component ids, Ss, Se, Al)) of the first image, or None."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, n = 2, len(data)
    sof: int | None = None
    comps: list[int] = []
    scans: list[tuple[list[int], int, int, int]] = []
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        seg = data[pos + 4 : pos + 2 + length]
        if (marker in _SOF_SEQUENTIAL or marker in _SOF_PROGRESSIVE or marker in (0xC3, 0xC7, 0xCB, 0xCF)) \
                and sof is None and len(seg) >= 6:
            sof = marker
            comps = [seg[6 + 3 * i] for i in range(seg[5]) if 6 + 3 * i < len(seg)]
        pos += 2 + length
        if marker == 0xDA and len(seg) >= 1:
            ns = seg[0]
            if len(seg) < 1 + 2 * ns + 3:
                return None
            ids = [seg[1 + 2 * i] for i in range(ns)]
            ss, se, a = seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]
            scans.append((ids, ss, se, a & 0x0F))
            # skip the entropy-coded data: up to the next marker that is not a stuffed 0 or RSTn
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return sof, comps, scans
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    return sof, comps, scans


def _progressive_gap(comps: list[int], scans: list[tuple[list[int], int, int, int]]) -> bool:
    """True if some coefficient of some component never reaches full precision (Al = 0)."""
    done = {c: np.zeros(64, bool) for c in comps}
    for ids, ss, se, al in scans:
        if al != 0 or ss > 63:
            continue
        for c in ids:
            if c in done:
                done[c][ss : min(se, 63) + 1] = True
    return any(not d.all() for d in done.values())


def _sentinel_rows_short(data: bytes, decoded: np.ndarray) -> bool:
    """Decode the scan again without its final EOI, into an image pre-filled with a sentinel.

    libjpeg emits each row once its data has arrived: where the real data ran out (the file was cut
    and an EOI appended), rows stay at the sentinel while the normal decode filled them with grey.
    """
    from PIL import Image

    im = pil_jpeg_of(data)  # header only: the tile to decode (Pillow clears it once loaded)
    tile = im.tile[0] if im.tile else None
    if tile is None or tile[0] != "jpeg":
        return False
    # Without the EOI but with padding: the padding lets libjpeg finish its last row of blocks (its
    # bit reader looks ahead), and where real data is missing it decodes padding, not its fill. The
    # padding must not be zero bits: libjpeg fills a block cut mid-way with zero bits, so a cut
    # inside the last blocks decoded identically both ways and passed as whole.
    body = data[: data.rfind(b"\xff\xd9")] if data.rstrip(b"\x00").endswith(b"\xff\xd9") else data
    body += _PADDING
    decoder = Image._getdecoder(im.mode, "jpeg", tile[3], getattr(im, "decoderconfig", ()))
    sentinel = 0 if int(decoded.reshape(-1)[-1]) != 0 else 255
    target = Image.new(im.mode, im.size, (sentinel,) * len(im.getbands()) if len(im.getbands()) > 1 else sentinel)
    decoder.setimage(target.im, tile[1])
    buf = memoryview(body)[tile[2] :]
    try:
        while buf:
            used, err = decoder.decode(bytes(buf[: 1 << 20]))
            if used < 0 or err < 0:
                break
            if used == 0:
                break
            buf = buf[used:]
    finally:
        decoder.cleanup()
    partial = np.asarray(target)
    if partial.shape != decoded.shape:
        return False
    # Rows libjpeg produced from the same data match the normal decode exactly.
    return not np.array_equal(partial, decoded)


def jpeg_incomplete(data: bytes, decoded: np.ndarray | None = None) -> str | None:
    """None if the (first) JPEG image in ``data`` is whole, else the reason.

    ``decoded`` (Pillow's pixels of ``data`` as an array, in the mode Pillow decoded, before any
    rotation) enables the sentinel check of sequential JPEG; without it only the scan structure
    is checked.
    """
    info = _jpeg_scans(data)
    if info is None:
        return None
    sof, comps, scans = info
    if sof is None or not scans:
        return "it holds no image data"
    if sof in _SOF_PROGRESSIVE:
        if _progressive_gap(comps, scans):
            return "its later progressive scans are missing"
        return None
    if not set(comps) <= {c for ids, *_ in scans for c in ids}:
        return "the data of a colour component is missing"
    if sof in _SOF_SEQUENTIAL and decoded is not None and len(scans) == 1:
        if _sentinel_rows_short(data, decoded):
            return "its image data stops early and the rest would be filled in grey"
    return None


def pil_jpeg_of(data: bytes):
    """Open ``data`` as JPEG with Pillow (for callers that only hold the bytes, e.g. DICOM frames)."""
    from PIL import Image

    return Image.open(io.BytesIO(data), formats=("JPEG",))
