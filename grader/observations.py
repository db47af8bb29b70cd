"""The wire format of observations: JSON plus raw tensor bytes, nothing compressed.

The probe (untrusted) writes `<name>.json` and `<name>.bin`; the parent reads them back. A
tensor travels as a reference `{"__tensor__": i, "dtype": "float32", "shape": [...], "offset":
o, "nbytes": n}` in the JSON and `n` raw bytes at offset `o` of the blob. The reader accepts a
small set of dtypes and checks that every size adds up before it copies anything: tensors lie
back to back in the blob in the order the JSON names them (as `encode` writes them), so all of
them together hold exactly the blob's bytes, and a planted file can
neither inflate (no decompression, unlike the zip archive `torch.load` reads, and no tensor
pointing at the same bytes again and again) nor point outside the blob. JSON nested too deep for
the reader is refused like any other malformed file.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

TENSOR_SUFFIX = "_tensor"
DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}


class ObservationError(ValueError):
    """An observation that does not follow the format (what a tampered file looks like)."""


def encode(value: Any) -> tuple[str, bytes]:
    """(JSON text, blob) for an observer's result; tensors only under `*_tensor` keys."""
    chunks: list[bytes] = []
    offset = 0

    def walk(item: Any, key: str = "") -> Any:
        nonlocal offset
        if key.endswith(TENSOR_SUFFIX) and isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            if tensor.dtype not in _NAMES:
                tensor = tensor.float()
            raw = tensor.numpy().tobytes()
            ref = {
                "__tensor__": len(chunks),
                "dtype": _NAMES[tensor.dtype],
                "shape": list(tensor.shape),
                "offset": offset,
                "nbytes": len(raw),
            }
            chunks.append(raw)
            offset += len(raw)
            return ref
        if isinstance(item, dict):
            return {str(k): walk(v, str(k)) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    data = walk(value)
    return json.dumps(data), b"".join(chunks)


def decode(text: bytes | str, blob: bytes) -> Any:
    """The observation, tensors rebuilt from `blob`; ObservationError when anything is off."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ObservationError(f"not JSON the grader reads ({type(err).__name__})") from None
    layout = [0]  # where the next tensor's bytes must start

    def walk(item: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ObservationError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if "__tensor__" in item:
                return _tensor(item, blob, layout)
            return {k: walk(v, depth + 1) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, depth + 1) for v in item]
        return item

    return walk(data)


MAX_DIMS = 16  # no observer records tensors of more dimensions
MAX_DEPTH = 64  # far more than any observer nests; the walk above recurses once per level


def _claim(layout: list[int], offset: int, nbytes: int) -> None:
    """Each tensor's bytes follow the previous tensor's: no two share a byte, none is skipped."""
    if offset != layout[0]:
        raise ObservationError(
            f"tensor at byte {offset}, expected {layout[0]}: tensors must not share bytes"
        )
    layout[0] = offset + nbytes


def _tensor(ref: dict, blob: bytes, layout: list[int]) -> torch.Tensor:
    dtype = DTYPES.get(ref.get("dtype"))
    shape, offset, nbytes = ref.get("shape"), ref.get("offset"), ref.get("nbytes")
    if dtype is None:
        raise ObservationError(f"tensor of unknown dtype {ref.get('dtype')!r}")
    if not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape)
    ):
        raise ObservationError("tensor with a malformed shape")
    if not (isinstance(offset, int) and isinstance(nbytes, int) and offset >= 0):
        raise ObservationError("tensor with a malformed offset")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if nbytes != math.prod(shape) * itemsize or offset + nbytes > len(blob):
        raise ObservationError("tensor whose size does not match its bytes")
    _claim(layout, offset, nbytes)
    raw = bytearray(blob[offset : offset + nbytes])
    if not raw:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
