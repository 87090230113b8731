"""read_image, read_images and list_image_files on real files written by Pillow and numpy."""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from digitrec.errors import (
    DataFileError,
    DataNotFoundError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
)
from digitrec.io import list_image_files, read_image, read_images


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares a width x height grayscale image."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + png_chunk(b"IEND", b"")
    )


GRADIENT = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5


# --- bit depths ------------------------------------------------------------------------


def test_8_bit_png_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    Image.fromarray(GRADIENT).save(path)
    image = read_image(path)
    assert image.dtype == torch.float32
    assert image.shape == (1, 6, 8)
    assert torch.equal(image[0], torch.from_numpy(GRADIENT.astype(np.float32) / 255))


def test_path_str_and_bytes_give_the_same_pixels(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    Image.fromarray(GRADIENT).save(path)
    assert torch.equal(read_image(str(path)), read_image(path.read_bytes()))


SIXTEEN = np.array([[0, 1, 255, 256], [4095, 32768, 65534, 65535]], dtype=np.uint16)


@pytest.mark.parametrize("format", ["PNG", "TIFF"])
def test_16_bit_keeps_every_value(format: str) -> None:
    data = encode(Image.fromarray(SIXTEEN), format)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = read_image(data)
    assert image.shape == (1, 2, 4)
    # Exact to 1/65535: no value is clipped to 8 bits (1 and 256 stay distinct from 0 and 255).
    assert torch.equal(
        (image[0].double() * 65535).round().to(torch.int64),
        torch.from_numpy(SIXTEEN.astype(np.int64)),
    )


def test_16_bit_big_endian_tiff() -> None:
    data = encode(Image.fromarray(SIXTEEN.astype(">u2")), "TIFF")
    image = read_image(data)
    assert torch.allclose(image[0], torch.from_numpy(SIXTEEN / 65535).float())


def test_32_bit_integer_pixels_are_read_as_16_bit_or_refused() -> None:
    values = SIXTEEN.astype(np.int32)
    image = read_image(encode(Image.fromarray(values, mode="I"), "TIFF"))
    assert torch.allclose(image[0], torch.from_numpy(SIXTEEN / 65535).float())
    with pytest.raises(DataFileError, match=r"0-65535.*\[-5, 70000\]"):
        read_image(encode(Image.fromarray(np.array([[-5, 70000]], np.int32), mode="I"), "TIFF"))


def test_float_tiff_in_range_and_out_of_range() -> None:
    values = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    assert torch.equal(
        read_image(encode(Image.fromarray(values, mode="F"), "TIFF"))[0], torch.from_numpy(values)
    )
    with pytest.raises(DataFileError, match=r"\[0, 1\]"):
        read_image(encode(Image.fromarray(values * 300, mode="F"), "TIFF"))


# --- formats ---------------------------------------------------------------------------


def test_jpeg_gray_and_colour() -> None:
    flat = Image.new("RGB", (16, 16), (200, 100, 50))
    image = read_image(encode(flat, "JPEG", quality=95))
    assert image.shape == (3, 16, 16)
    assert torch.allclose(image[:, 8, 8], torch.tensor([200, 100, 50]) / 255, atol=3 / 255)
    gray = read_image(encode(Image.new("L", (16, 16), 90), "JPEG", quality=95))
    assert gray.shape == (1, 16, 16)
    assert abs(float(gray.mean()) - 90 / 255) < 2 / 255


def test_bmp_and_lossless_webp_are_exact() -> None:
    colours = np.stack([GRADIENT, 255 - GRADIENT, GRADIENT // 2], axis=-1)
    expected = torch.from_numpy(colours.transpose(2, 0, 1).astype(np.float32) / 255)
    assert torch.equal(read_image(encode(Image.fromarray(colours), "BMP")), expected)
    assert torch.equal(
        read_image(encode(Image.fromarray(colours), "WEBP", lossless=True)), expected
    )


def test_palette_image_gives_its_colours() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1])
    pixels = read_image(encode(image, "PNG"))
    assert pixels.shape == (3, 1, 2)
    assert pixels[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert pixels[:, 0, 1].tolist() == [0.0, 0.0, 1.0]


def test_palette_transparency_is_composited() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 20, 20, 20] + [0] * 762)
    image.putdata([0, 1])
    pixels = read_image(encode(image, "PNG", transparency=0), mode="gray")
    assert pixels[0, 0].tolist() == pytest.approx([1.0, 20 / 255], abs=1e-6)


def canvas(ink: tuple[int, int, int]) -> bytes:
    """A transparent canvas (hidden colour black) with one opaque stroke pixel of ``ink``."""
    image = Image.new("RGBA", (3, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (*ink, 255))
    image.putpixel((2, 0), (*ink, 128))
    return encode(image, "PNG")


def test_dark_ink_on_transparent_canvas_reads_as_ink_on_white_paper() -> None:
    pixels = read_image(canvas((0, 0, 0)), mode="gray")
    assert pixels[0, 0].tolist() == pytest.approx([1.0, 0.0, 1 - 128 / 255], abs=1e-6)


def test_white_ink_needs_a_black_background_or_auto() -> None:
    white_ink = canvas((255, 255, 255))
    assert read_image(white_ink, mode="gray")[0, 0].tolist() == pytest.approx([1, 1, 1])
    expected = [0.0, 1.0, 128 / 255]
    assert read_image(white_ink, mode="gray", background=0.0)[0, 0].tolist() == pytest.approx(
        expected
    )
    assert read_image(white_ink, mode="gray", background="auto")[0, 0].tolist() == pytest.approx(
        expected
    )
    dark = read_image(canvas((0, 0, 0)), mode="gray", background="auto")
    assert dark[0, 0, 0].item() == 1.0


def test_gray_with_alpha() -> None:
    image = Image.new("LA", (2, 1), (0, 0))
    image.putpixel((1, 0), (60, 255))
    pixels = read_image(encode(image, "PNG"), background=0.5)
    assert pixels.shape == (1, 1, 2)
    assert pixels[0, 0].tolist() == pytest.approx([0.5, 60 / 255])


def test_cmyk_becomes_rgb() -> None:
    pixels = read_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    assert pixels.shape == (3, 8, 8)
    assert torch.allclose(pixels[:, 4, 4], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_exif_orientation_is_applied() -> None:
    # 32 wide, 16 high: the left half black. Orientation 6 says "rotate 90 degrees
    # clockwise to display", so the image comes out 16 wide, 32 high, black on top.
    array = np.full((16, 32), 255, np.uint8)
    array[:, :16] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = read_image(encode(Image.fromarray(array), "JPEG", quality=95, exif=exif.tobytes()))
    assert pixels.shape == (1, 32, 16)
    assert float(pixels[0, :14].max()) < 0.1
    assert float(pixels[0, 18:].min()) > 0.9


def test_mode_converts_channels() -> None:
    red = read_image(encode(Image.new("RGB", (2, 2), (255, 0, 0)), "PNG"), mode="gray")
    assert red.shape == (1, 2, 2)
    assert red[0, 0, 0].item() == pytest.approx(0.299)
    gray = read_image(encode(Image.fromarray(GRADIENT), "PNG"), mode="rgb")
    assert gray.shape == (3, 6, 8)
    assert torch.equal(gray[0], gray[2])
    assert read_image(encode(Image.fromarray(SIXTEEN), "PNG"), mode="rgb").shape == (3, 2, 4)


def test_bilevel_image() -> None:
    image = Image.new("1", (2, 1))
    image.putpixel((1, 0), 1)
    assert read_image(encode(image, "PNG"))[0, 0].tolist() == [0.0, 1.0]


# --- .npy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "expected_shape"),
    [
        (GRADIENT, (1, 6, 8)),
        (GRADIENT[None], (1, 6, 8)),
        (np.stack([GRADIENT] * 3), (3, 6, 8)),
        (np.stack([GRADIENT] * 3, axis=-1), (3, 6, 8)),
        (np.asfortranarray(GRADIENT), (1, 6, 8)),
    ],
)
def test_npy_layouts(array: np.ndarray, expected_shape: tuple[int, ...]) -> None:
    image = read_image(npy(array))
    assert image.shape == expected_shape
    assert torch.equal(image[0], torch.from_numpy(GRADIENT / np.float32(255)))


def test_npy_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, SIXTEEN.astype(">u2"))
    assert torch.allclose(read_image(path)[0], torch.from_numpy(SIXTEEN / 65535).float())
    floats = np.array([[0.0, 0.5, 1.0]], np.float64)
    assert read_image(npy(floats))[0, 0].tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([[0.0, 2.0]]), r"\[0, 1\]"),
        (np.array([[np.nan, 0.0]]), "finite"),
        (np.array([[1, 2]], np.int32), "dtype int32"),
        (np.array([[None, 1]], dtype=object), "object|pickle|dtype"),
        (np.zeros((2, 5, 5), np.uint8), r"shape \(2, 5, 5\)"),
        (np.zeros((2, 2, 2, 2), np.uint8), "shape"),
        (np.zeros((0, 5), np.uint8), "empty image"),
    ],
)
def test_npy_refused(array: np.ndarray, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        read_image(npy(array))


def _never_called(name: str) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{name} was called: the image was decoded before it was refused")

    return fail


def test_npy_truncated_and_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    data = npy(np.zeros((40, 40), np.uint8))
    with pytest.raises(DataFileError, match="truncated"):
        read_image(data[:-10])
    bomb = npy(np.zeros((2, 2), np.uint8)).replace(b"(2, 2)", b"(100000, 100000)")
    # Refused from the header: the pixels are never looked at.
    monkeypatch.setattr(np, "frombuffer", _never_called("numpy.frombuffer"))
    with pytest.raises(DataFileError, match="max_pixels"):
        read_image(bomb)


# --- safety ----------------------------------------------------------------------------


def test_decompression_bomb_is_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_declaring(100_000, 100_000)
    assert len(bomb) < 200
    assert Image.open(io.BytesIO(png_declaring(5, 5))).size == (5, 5)  # the crafted PNG is valid
    # Refused from the header: Pillow never decodes a pixel of it.
    monkeypatch.setattr(ImageFile.ImageFile, "load", _never_called("ImageFile.load"))
    with pytest.raises(DataFileError, match=r"<bytes>.*too large"):
        read_image(bomb)


def test_max_pixels_is_checked_before_decoding() -> None:
    # 81 megapixels: above our default limit, below Pillow's own.
    with pytest.raises(DataFileError, match=r"9000x9000.*max_pixels=64,000,000"):
        read_image(png_declaring(9000, 9000))
    with pytest.raises(DataFileError, match="max_pixels=47"):
        read_image(encode(Image.fromarray(GRADIENT), "PNG"), max_pixels=47)
    assert read_image(encode(Image.fromarray(GRADIENT), "PNG"), max_pixels=48).shape == (1, 6, 8)


def test_truncated_files(tmp_path: Path) -> None:
    for format in ("PNG", "JPEG"):
        data = encode(
            Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)), format
        )
        path = tmp_path / f"cut.{format.lower()}"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(DataFileError, match=rf"cut\.{format.lower()}.*(truncated|corrupt)"):
            read_image(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty \(0 bytes\)"),
        (b"hello, world", r"not a PNG, JPEG.*b'hello, w'"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not a PNG"),  # EPS would run Ghostscript
        (encode(Image.new("L", (4, 4)), "GIF"), "not a PNG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(30), "PNG|corrupt"),
    ],
)
def test_unreadable_content_names_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=r"upload\.png") as raised:
        read_image(path)
    assert raised.match(message)
    with pytest.raises(DataFileError, match="<bytes>"):
        read_image(content)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"nothing\.png"):
        read_image(tmp_path / "nothing.png")
    with pytest.raises(DataFileError, match="is a folder"):
        read_image(tmp_path)


def test_invalid_arguments() -> None:
    data = encode(Image.fromarray(GRADIENT), "PNG")
    with pytest.raises(InvalidInputError, match="mode"):
        read_image(data, mode="grey")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="background"):
        read_image(data, background=2.0)
    with pytest.raises(InvalidInputError, match="max_pixels"):
        read_image(data, max_pixels=0)
    with pytest.raises(InvalidTypeError, match="int"):
        read_image(42)  # type: ignore[arg-type]


def test_missing_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "digitrec\[images\]"'):
        read_image(encode(Image.fromarray(GRADIENT), "PNG"))
    assert read_image(npy(GRADIENT)).shape == (1, 6, 8)  # .npy needs no Pillow


# --- many files --------------------------------------------------------------------------


@pytest.fixture
def mixed_folder(tmp_path: Path) -> list[Path]:
    good = tmp_path / "a.png"
    Image.fromarray(GRADIENT).save(good)
    corrupt = tmp_path / "b.png"
    corrupt.write_bytes(b"not an image")
    other = tmp_path / "c.npy"
    np.save(other, GRADIENT)
    return [good, corrupt, tmp_path / "missing.png", other]


def test_read_images_reports_every_failure_at_once(mixed_folder: list[Path]) -> None:
    with pytest.raises(DataFileError, match="2 of 4 image files") as raised:
        read_images(mixed_folder)
    assert "b.png" in str(raised.value)
    assert "missing.png" in str(raised.value)


def test_read_images_skip(mixed_folder: list[Path]) -> None:
    images, paths, failures = read_images(mixed_folder, on_error="skip", mode="rgb", progress=True)
    assert [path.name for path in paths] == ["a.png", "c.npy"]
    assert [image.shape for image in images] == [(3, 6, 8), (3, 6, 8)]
    assert [(path.name, "b.png" in reason or "missing" in reason) for path, reason in failures] == [
        ("b.png", True),
        ("missing.png", True),
    ]


def test_read_images_without_tqdm(
    mixed_folder: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert len(read_images(mixed_folder, on_error="skip", progress=True).images) == 2


def test_read_images_lists_the_first_50(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="and 5 more") as raised:
        read_images([tmp_path / f"{index}.png" for index in range(55)])
    assert "49.png" in str(raised.value)
    assert "50.png" not in str(raised.value)


def test_read_images_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="on_error"):
        read_images([], on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="single str"):
        read_images(str(tmp_path))


def test_list_image_files(tmp_path: Path) -> None:
    for name in [
        "b/2.png",
        "b/1.JPG",
        "a.tif",
        "c/d/deep.npy",
        ".hidden/x.png",
        "b/.x.png",
        "notes.txt",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    relative = [path.relative_to(tmp_path).as_posix() for path in list_image_files(tmp_path)]
    assert relative == ["a.tif", "b/1.JPG", "b/2.png", "c/d/deep.npy"]
    assert [p.name for p in list_image_files(tmp_path, recursive=False)] == ["a.tif"]
    explicit = list_image_files([tmp_path / "notes.txt", tmp_path / "b", tmp_path / "b/2.png"])
    assert [path.name for path in explicit] == ["notes.txt", "1.JPG", "2.png"]
    with pytest.raises(DataNotFoundError, match="nowhere"):
        list_image_files(tmp_path / "nowhere")
