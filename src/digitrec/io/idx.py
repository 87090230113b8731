"""IDX files, the format MNIST, Fashion-MNIST and EMNIST ship in, gzipped or not.

An IDX file is a magic number (two zero bytes, a type code, the number of
dimensions), the dimensions as big-endian 32-bit integers, then the data. The
header is checked against what the file can hold before any data is read, and a
gzipped file is decompressed in chunks that stop at the size the header
announces, so a small file that claims a huge array costs no memory.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFileError, DataNotFoundError

IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Deflate cannot expand data by more than about 1032:1; a header that claims more
# than that is lying, and believing it would allocate memory the file cannot fill.
_MAX_DEFLATE_RATIO = 1100
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _read_at_most(stream: Any, limit: int) -> bytes:
    """Read until ``limit`` bytes or the end, in chunks: memory follows the data, not a claim."""
    parts = bytearray()
    while len(parts) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(parts)))
        if not chunk:
            break
        parts += chunk
    return bytes(parts)


def read_idx_bytes(path: Path) -> bytes:
    """Return the decompressed bytes of an IDX file after checking its header against its size."""
    if not path.is_file():
        raise DataNotFoundError(f"no IDX file at {str(path)!r}")
    file_size = path.stat().st_size
    with path.open("rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
            header = stream.read(4)
            if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] not in IDX_DTYPES:
                raise DataFileError(
                    f"{str(path)!r} is not an IDX file: expected a magic number 00 00 <type> "
                    f"<ndim> with type in {sorted(IDX_DTYPES)}, "
                    f"got {header.hex(' ') or 'an empty file'}"
                )
            ndim = header[3]
            dims_bytes = stream.read(4 * ndim)
            if ndim == 0 or len(dims_bytes) < 4 * ndim:
                raise DataFileError(
                    f"{str(path)!r} is a truncated IDX file: the header announces {ndim} "
                    f"dimensions but {len(dims_bytes) // 4} follow"
                )
            dims = np.frombuffer(dims_bytes, dtype=">u4").astype(np.int64)
            if not bool((dims > 0).all()):
                raise DataFileError(
                    f"{str(path)!r} announces shape {tuple(int(d) for d in dims)}: every "
                    "dimension of an IDX file must be at least 1"
                )
            expected = int(np.prod(dims, dtype=object)) * IDX_DTYPES[header[2]].itemsize
            limit = file_size * _MAX_DEFLATE_RATIO if compressed else file_size - 4 - 4 * ndim
            if expected > limit:
                raise DataFileError(
                    f"{str(path)!r}: the header announces shape {tuple(int(d) for d in dims)} "
                    f"({expected:,} bytes of data) but the file holds at most {max(limit, 0):,}; "
                    "it is truncated or corrupt"
                )
            payload = _read_at_most(stream, expected + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{str(path)!r} is not a readable IDX file: {error}") from error
    if len(payload) != expected:
        problem = "has trailing bytes" if len(payload) > expected else "is truncated"
        raise DataFileError(
            f"{str(path)!r} {problem}: the header announces {expected:,} bytes of data, "
            f"{'more' if len(payload) > expected else len(payload)} follow"
        )
    return header + dims_bytes + payload


def parse_idx(data: bytes) -> np.ndarray[Any, Any]:
    """Parse IDX bytes already checked by :func:`read_idx_bytes` into a native-endian array."""
    dtype = IDX_DTYPES[data[2]]
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path) -> np.ndarray[Any, Any]:
    """Read one IDX file into a native-endian numpy array."""
    return parse_idx(read_idx_bytes(path))
