"""Fuzzing read_image and read_dicom: whatever bytes come, a valid image or a DataFileError.

Each target runs a couple of hundred hypothesis-generated inputs: random bytes and
valid files (PNG 8 and 16 bits, JPEG, TIFF, BMP, WebP, .npy, DICOM) with bytes
flipped, inserted or cut. Each input must be answered within a second. The counts
are asserted so that a run that tried nothing cannot pass.
"""

from __future__ import annotations

import importlib.util
import io
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitrec.errors import DataFileError
from digitrec.io import read_dicom, read_image

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning"
)  # corrupt-input warnings of Pillow, pydicom

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (12, 10), np.uint8)
    rgba = rng.integers(0, 256, (8, 8, 4), np.uint8)
    npy = io.BytesIO()
    np.save(npy, gray)
    return {
        "png": _encode(Image.fromarray(gray), "PNG"),
        "png16": _encode(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
        "png-rgba": _encode(Image.fromarray(rgba), "PNG"),
        "jpeg": _encode(Image.fromarray(gray), "JPEG", quality=90),
        "tiff16": _encode(Image.fromarray(gray.astype(np.uint16) * 257), "TIFF"),
        "bmp": _encode(Image.fromarray(rgba[..., :3]), "BMP"),
        "webp": _encode(Image.fromarray(rgba), "WEBP", lossless=True),
        "npy": npy.getvalue(),
    }


SEEDS = _seeds()


@st.composite
def _mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid file with bytes flipped, inserted, cut out or cut off."""
    content = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "cut", "truncate"]))
        position = draw(st.integers(0, max(0, len(content) - 1)))
        if kind == "flip" and content:
            content[position] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            content[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "cut":
            del content[position : position + draw(st.integers(1, 64))]
        else:
            del content[position:]
    return bytes(content)


def _fuzz(seed: bytes, read: Callable[[bytes], torch.Tensor]) -> int:
    tried = 0

    @FUZZ
    @given(st.one_of(st.binary(max_size=2048), _mutated(seed)))
    def check(content: bytes) -> None:
        nonlocal tried
        tried += 1
        started = time.perf_counter()
        try:
            image = read(content)
        except DataFileError:
            pass
        else:
            assert image.dtype == torch.float32
            assert image.dim() == 3
            assert image.shape[0] in (1, 3)
            assert bool(torch.isfinite(image).all())
            assert 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
        assert time.perf_counter() - started < 1.0

    check()
    return tried


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_read_image(kind: str) -> None:
    assert _fuzz(SEEDS[kind], read_image) >= 150


@pytest.mark.skipif(importlib.util.find_spec("pydicom") is None, reason="needs pydicom")
@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_small_odd.dcm"])
def test_read_dicom(name: str) -> None:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert isinstance(path, str)
    with open(path, "rb") as stream:
        seed = stream.read()
    assert _fuzz(seed, read_dicom) >= 150
    assert _fuzz(seed, read_image) >= 150
