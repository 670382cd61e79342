"""Per-image records in the user's data folder: one small JSON file per image sha256, one entry per
frame, written atomically. The reader's assessments and outline edits both keep theirs this way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str | None) -> bool:
    return bool(value) and bool(_SHA256.match(value))


class FrameStore:
    """Entries per (image sha256, frame). Subclasses name their folder and what they hold."""

    folder_name = ""
    what = "a record"  # for the error message: "an outline edit is stored under the image's sha256"
    create_folder = True
    json_options: ClassVar[dict[str, Any]] = {"separators": (",", ":")}

    def __init__(self, folder: Path | None = None) -> None:
        if folder is None:
            from busapp.core.paths import user_data_dir

            folder = user_data_dir(create=self.create_folder) / self.folder_name
        self.folder = Path(folder)

    def _file(self, sha256: str) -> Path:
        if not is_sha256(sha256 or ""):
            raise ValueError(f"{self.what} is stored under the image's sha256")
        return self.folder / f"{sha256}.json"

    def _load(self, sha256: str) -> dict[str, Any]:
        try:
            data = json.loads(self._file(sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and isinstance(data.get("frames"), dict) else {}

    def _entry(self, sha256: str, frame: int) -> Any:
        return self._load(sha256).get("frames", {}).get(str(int(frame)))

    def _write(self, sha256: str, data: dict[str, Any]) -> None:
        from busapp.core.atomic import write_text_atomic

        write_text_atomic(self._file(sha256), json.dumps(data, **self.json_options))

    def _put_entry(self, sha256: str, frame: int, entry: dict[str, Any]) -> None:
        data = self._load(sha256) or {"format": 1, "frames": {}}
        data["frames"][str(int(frame))] = entry
        self._write(sha256, data)

    def remove(self, sha256: str, frame: int = 0) -> None:
        """Forget this frame's entry; the file goes when its last entry does."""
        data = self._load(sha256)
        if data.get("frames", {}).pop(str(int(frame)), None) is None:
            return
        if data["frames"]:
            self._write(sha256, data)
        else:
            self._file(sha256).unlink(missing_ok=True)
