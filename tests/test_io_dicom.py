"""read_dicom on DICOM files written with pydicom and on pydicom's own test files.

Expected values are computed by hand from the DICOM standard (PS3.3 C.11.2.1.2):
LINEAR window: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1].
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import torch  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

from digitrec.errors import (  # noqa: E402
    DataFileError,
    InvalidInputError,
    MissingDependencyError,
)
from digitrec.io import read_dicom, read_image  # noqa: E402


def dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    preamble: bool = True,
    **elements: object,
) -> bytes:
    """A DICOM file holding ``pixels``: (H, W), (frames, H, W), or (H, W, 3) for colour."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
        ds.Rows, ds.Columns = pixels.shape[:2]
    else:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=preamble)
    return buffer.getvalue()


STORED = np.array([[0, 532, 400], [500, 4095, 520]], np.uint16)
HU = STORED * 2.0 - 1024  # RescaleSlope 2, RescaleIntercept -1024


def linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def ct(*, photometric: str = "MONOCHROME2", preamble: bool = True, **elements: object) -> bytes:
    return dicom(
        STORED,
        photometric=photometric,
        bits_stored=12,
        preamble=preamble,
        RescaleSlope=2,
        RescaleIntercept=-1024,
        **elements,
    )


def pydicom_file(name: str) -> str:
    """The path of one of pydicom's test files."""
    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


def values(image: torch.Tensor) -> np.ndarray:
    return image[0].double().numpy()


def test_rescale_and_file_window_match_a_hand_computation() -> None:
    image = read_dicom(ct(WindowCenter=40, WindowWidth=400))
    assert image.dtype == torch.float32
    assert image.shape == (1, 2, 3)
    # stored 532 -> 40 HU -> (40 - 39.5) / 399 + 0.5; stored 500 -> -24 HU -> (-63.5 / 399) + 0.5
    expected = [[0.0, 0.5 + 0.5 / 399, 0.0], [0.5 - 63.5 / 399, 1.0, 0.5 - 23.5 / 399]]
    np.testing.assert_allclose(values(image), expected, atol=1e-6)
    np.testing.assert_allclose(values(image), linear(HU, 40, 400), atol=1e-6)


def test_multi_valued_window_uses_the_first() -> None:
    image = read_dicom(ct(WindowCenter=[40, 300], WindowWidth=[400, 1500]))
    np.testing.assert_allclose(values(image), linear(HU, 40, 400), atol=1e-6)


def test_caller_window_overrides_the_file() -> None:
    image = read_dicom(ct(WindowCenter=40, WindowWidth=400), window=(0, 2000))
    np.testing.assert_allclose(values(image), linear(HU, 0, 2000), atol=1e-6)


def test_no_window_uses_min_max() -> None:
    expected = (HU - HU.min()) / (HU.max() - HU.min())
    np.testing.assert_allclose(values(read_dicom(ct())), expected, atol=1e-6)


def test_other_voi_functions() -> None:
    exact = read_dicom(ct(WindowCenter=40, WindowWidth=400, VOILUTFunction="LINEAR_EXACT"))
    np.testing.assert_allclose(values(exact), np.clip((HU - 40) / 400 + 0.5, 0, 1), atol=1e-6)
    sigmoid = read_dicom(ct(WindowCenter=40, WindowWidth=400, VOILUTFunction="SIGMOID"))
    np.testing.assert_allclose(values(sigmoid), 1 / (1 + np.exp(-4 * (HU - 40) / 400)), atol=1e-6)


def test_voi_lut_sequence() -> None:
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 8]
    lut.add_new(0x00283006, "US", [0, 100, 200, 255])  # LUTData
    image = read_dicom(dicom(np.array([[0, 1, 2, 3, 10]], np.uint8), VOILUTSequence=[lut]))
    np.testing.assert_allclose(values(image), [[0, 100 / 255, 200 / 255, 1, 1]], atol=1e-6)


def test_monochrome1_is_inverted() -> None:
    mono2 = read_dicom(ct(WindowCenter=40, WindowWidth=400))
    mono1 = read_dicom(
        dicom(
            STORED,
            photometric="MONOCHROME1",
            bits_stored=12,
            RescaleSlope=2,
            RescaleIntercept=-1024,
            WindowCenter=40,
            WindowWidth=400,
        )
    )
    assert torch.allclose(mono1, 1 - mono2, atol=1e-6)


@pytest.mark.parametrize("bits_stored", [12, 16])
def test_signed_pixels(bits_stored: int) -> None:
    image = read_dicom(dicom(np.array([[-1000, 0, 1000]], np.int16), bits_stored=bits_stored))
    np.testing.assert_allclose(values(image), [[0.0, 0.5, 1.0]], atol=1e-6)


def test_8_bit() -> None:
    image = read_dicom(dicom(np.array([[0, 255]], np.uint8), WindowCenter=128, WindowWidth=256))
    np.testing.assert_allclose(values(image), linear(np.array([[0, 255]]), 128, 256), atol=1e-6)


def test_rgb() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    image = read_dicom(dicom(pixels, photometric="RGB"))
    assert image.shape == (3, 2, 3)
    assert torch.equal(image, torch.from_numpy(pixels.transpose(2, 0, 1) / np.float32(255)))
    with pytest.raises(InvalidInputError, match="grayscale"):
        read_dicom(dicom(pixels, photometric="RGB"), window=(10, 20))


@pytest.mark.parametrize("name", ["examples_palette.dcm", "SC_ybr_full_422_uncompressed.dcm"])
def test_palette_and_ybr_become_rgb(name: str) -> None:
    image = read_dicom(pydicom_file(name))
    assert image.shape[0] == 3
    assert 0 <= float(image.min()) < float(image.max()) <= 1


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_pydicom_test_files(name: str) -> None:
    image = read_dicom(pydicom_file(name))
    assert image.dtype == torch.float32
    assert image.shape[0] == 1
    assert 0 <= float(image.min()) < float(image.max()) <= 1


def test_multi_frame_needs_a_frame() -> None:
    frames = np.stack([np.full((2, 2), value, np.uint16) for value in (0, 10, 20)])
    frames[1, 0, 0] = 30
    data = dicom(frames)
    with pytest.raises(DataFileError, match=r"holds 3 frames; pass frame=i \(0 to 2\)"):
        read_dicom(data)
    np.testing.assert_allclose(values(read_dicom(data, frame=1)), [[1, 0], [0, 0]])
    with pytest.raises(InvalidInputError, match="frame=3 is past the last frame"):
        read_dicom(data, frame=3)
    with pytest.raises(DataFileError, match="read_dicom"):
        read_image(data)


def test_single_frame_accepts_frame_0() -> None:
    assert read_dicom(ct(), frame=0).shape == (1, 2, 3)
    with pytest.raises(InvalidInputError, match="frame must be a non-negative integer"):
        read_dicom(ct(), frame=-1)


def test_no_pixel_data() -> None:
    data = pydicom_file("rtplan.dcm")
    with pytest.raises(DataFileError, match=r"rtplan\.dcm.*no pixel data"):
        read_dicom(data)


def test_unsupported_photometric_interpretation() -> None:
    with pytest.raises(DataFileError, match=r"'HSV' is not supported.*MONOCHROME2"):
        read_dicom(dicom(np.zeros((2, 2, 3), np.uint8), photometric="HSV"))


def test_undecodable_transfer_syntax_names_it() -> None:
    meta_syntax = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder exists
    data = dicom(np.zeros((2, 2), np.uint8))
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.file_meta.TransferSyntaxUID = meta_syntax
    dataset.PixelData = encapsulate([b"\x00" * 8])
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(DataFileError, match=r"<bytes>: cannot decode its pixel data.*MPEG2"):
        read_dicom(buffer.getvalue())


def test_compressed_file_decodes_with_a_plugin() -> None:
    pytest.importorskip("libjpeg", reason="JPEG-LS needs pylibjpeg-libjpeg")
    image = read_dicom(pydicom_file("MR_small_jpeg_ls_lossless.dcm"))
    reference = read_dicom(pydicom_file("MR_small.dcm"))
    assert torch.allclose(image, reference, atol=1e-6)


def test_absurd_size_is_refused_before_decoding() -> None:
    data = dicom(np.zeros((2, 2), np.uint8), Rows=60000, Columns=60000)
    with pytest.raises(DataFileError, match=r"60000x60000.*max_pixels"):
        read_dicom(data)
    with pytest.raises(DataFileError, match="max_pixels=5"):
        read_dicom(ct(), max_pixels=5)


def test_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"just some text, not a DICOM file at all")
    with pytest.raises(DataFileError, match=r"scan\.dcm"):
        read_image(path)


def test_read_image_dispatches_on_magic_and_name(tmp_path: Path) -> None:
    expected = read_dicom(ct(WindowCenter=40, WindowWidth=400))
    assert torch.equal(read_image(ct(WindowCenter=40, WindowWidth=400)), expected)
    path = tmp_path / "no-preamble.dcm"
    path.write_bytes(ct(WindowCenter=40, WindowWidth=400, preamble=False))
    assert path.read_bytes()[128:132] != b"DICM"
    assert torch.equal(read_image(path), expected)
    assert read_image(path, mode="rgb").shape == (3, 2, 3)


@pytest.mark.parametrize("window", [(40, 0), (float("nan"), 400), "wide", (1, 2, 3)])
def test_invalid_window(window: object) -> None:
    with pytest.raises(InvalidInputError, match="window"):
        read_dicom(ct(), window=window)  # type: ignore[arg-type]


def test_invalid_window_in_the_file() -> None:
    with pytest.raises(DataFileError, match=r"window=\(center, width\) to override"):
        read_dicom(ct(WindowCenter=40, WindowWidth=0))
    assert read_dicom(ct(WindowCenter=40, WindowWidth=0), window=(40, 400)).shape == (1, 2, 3)


def test_missing_pydicom_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "digitrec\[dicom\]"'):
        read_dicom(b"\x00" * 128 + b"DICM")
    with pytest.raises(MissingDependencyError, match="dicom"):
        read_image(b"\x00" * 128 + b"DICM")
