"""Coverage-guided fuzzing (atheris) of digitrec's image readers.

The first byte picks the reader (``read_image``, or ``read_dicom`` when pydicom is
installed); the rest is the file's content, passed as bytes. A reader may return an
image or raise a DataFileError; anything else (another exception, a tensor that is
not float32 (C, H, W) in [0, 1]) is a crash that atheris reports with its input.

Run (from a corpus of valid PNG, 16-bit PNG and TIFF, JPEG, BMP, WebP, .npy and DICOM
files):
    python fuzz/fuzz_images.py --make-seeds corpus-images/
    python fuzz/fuzz_images.py -runs=5000 -max_len=65536 -rss_limit_mb=2048 corpus-images/
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable
from pathlib import Path

import atheris
import numpy as np
import torch

# Instrument digitrec only: instrumenting torch too costs a minute of start-up.
with atheris.instrument_imports(include=["digitrec"]):
    from digitrec.errors import DataFileError
    from digitrec.io import read_dicom, read_image

READERS: list[Callable[[bytes], torch.Tensor]] = [read_image]
if importlib.util.find_spec("pydicom") is not None:
    READERS.append(read_dicom)


def test_one_input(data: bytes) -> None:
    """Feed one input to the reader its first byte picks; only DataFileError may escape."""
    if not data:
        return
    try:
        image = READERS[data[0] % len(READERS)](data[1:])
    except DataFileError:
        return
    shape = tuple(image.shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or image.dtype != torch.float32:
        raise AssertionError(f"bad image: shape {shape}, dtype {image.dtype}")
    low, high = float(image.min()), float(image.max())
    if not 0.0 <= low <= high <= 1.0:
        raise AssertionError(f"pixels outside [0, 1]: [{low}, {high}]")


def make_seeds(folder: Path) -> None:
    """Write valid files for each reader, prefixed with its selector byte, as the corpus."""
    from PIL import Image

    def encode(image: Image.Image, format: str, **options: object) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format, **options)
        return buffer.getvalue()

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (12, 10), np.uint8)
    rgba = rng.integers(0, 256, (8, 8, 4), np.uint8)
    npy = io.BytesIO()
    np.save(npy, gray)
    seeds = {
        "png": encode(Image.fromarray(gray), "PNG"),
        "png16": encode(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
        "rgba": encode(Image.fromarray(rgba), "PNG"),
        "jpeg": encode(Image.fromarray(gray), "JPEG", quality=90),
        "tiff16": encode(Image.fromarray(gray.astype(np.uint16) * 257), "TIFF"),
        "bmp": encode(Image.fromarray(rgba[..., :3]), "BMP"),
        "webp": encode(Image.fromarray(rgba), "WEBP", lossless=True),
        "npy": npy.getvalue(),
    }
    selectors = {name: 0 for name in seeds}
    if len(READERS) > 1:
        from pydicom.data import get_testdata_file

        for name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb_small_odd.dcm"):
            seeds[name] = Path(str(get_testdata_file(name))).read_bytes()
            selectors[name] = 1
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in seeds.items():
        (folder / f"seed-{name}").write_bytes(bytes([selectors[name]]) + content)


def main() -> None:
    """Run atheris, or write the seed corpus with ``--make-seeds DIR``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
