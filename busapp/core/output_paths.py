"""Where busapp may write, and how a failed write is said to a user (Qt-free).

Every writer (``busapp-cli predict``, batch, the GUI's exports) follows one rule: an output never
replaces an input, nor any file busapp did not write itself.
"""

from __future__ import annotations

import errno

_ERRNO_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EROFS: "the disk is read-only",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "a folder has that name",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EEXIST: "a file of that name exists already",
    errno.EIO: "the disk reported an input/output error",
    errno.EMFILE: "too many files are open",
    errno.EFBIG: "the file is too large for this disk",
}


def describe_os_error(e: OSError) -> str:
    """A few words for a user ("the disk is full"), never the raw "[Errno 28] ..." text."""
    if isinstance(e, PermissionError):
        return _ERRNO_WORDS[errno.EACCES]
    words = _ERRNO_WORDS.get(e.errno) if e.errno is not None else None
    return words or "the operating system refused it"
