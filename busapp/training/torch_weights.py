"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without torch.

The ImageNet EfficientNet-Lite0 weights we start from ship in that format. Importing torch only
to read ~5M floats would add ~700 MB to the training environment, so this reads the format
directly: a few pickles (magic number, protocol, system info, the object graph whose tensors refer
to storages by key), then the raw little-endian bytes of each storage in the order listed.
"""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _LazyTensor:
    """A tensor whose storage bytes come later in the file."""

    def __init__(self, storage_key: str, offset: int, size: tuple, stride: tuple) -> None:
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride

    def materialise(self, storages: dict[str, np.ndarray]) -> np.ndarray:
        flat = storages[self.storage_key]
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
        )
        return np.array(view, copy=True)


def _rebuild_tensor(storage: Any, storage_offset: int, size: tuple, stride: tuple, *_: Any) -> Any:
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storage_types: dict[str, np.dtype] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in weight file")

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        self.storage_types[key] = storage_type.dtype
        return key


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return {parameter name: numpy array} from a legacy-format ``torch.save`` file."""
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file")
        if pickle.load(f) != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported PyTorch protocol")
        pickle.load(f)  # system info (endianness, type sizes)
        unpickler = _Unpickler(f)
        state = unpickler.load()
        keys = pickle.load(f)
        storages: dict[str, np.ndarray] = {}
        for key in keys:
            dtype = unpickler.storage_types[key]
            (count,) = struct.unpack("<q", f.read(8))
            storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype="<" + dtype.str[1:])
    return {name: t.materialise(storages) for name, t in state.items()}
