"""Tests of prepare_digits and resize_images, and of the photo renderer they are measured on."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import digitrec
from digitrec._synthetic import render_photos, render_tight_crops
from digitrec.errors import InvalidInputError, InvalidTypeError
from digitrec.preprocessing import prepare_digits, resize_images

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One thread: on a busy 2-core machine the small tensors here only lose from two."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits(mnist_test: digitrec.ImageDataset) -> torch.Tensor:
    return mnist_test.images[:64]


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    plane = image.reshape(image.shape[-2:]).to(torch.float64)
    ys = torch.arange(plane.shape[0], dtype=torch.float64)
    xs = torch.arange(plane.shape[1], dtype=torch.float64)
    mass = plane.sum()
    return float((plane.sum(1) * ys).sum() / mass), float((plane.sum(0) * xs).sum() / mass)


def ink_extent(image: torch.Tensor, level: float = 0.3) -> tuple[int, int]:
    plane = image.reshape(image.shape[-2:]) > level
    rows = torch.nonzero(plane.any(1)).flatten()
    cols = torch.nonzero(plane.any(0)).flatten()
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def embed(
    digit: torch.Tensor, height: int, width: int, top: int, left: int, scale: float
) -> torch.Tensor:
    """Paste a white-on-black digit, rescaled, onto a black canvas."""
    size = max(8, round(28 * scale))
    resized = F.interpolate(
        digit.float().view(1, 1, 28, 28) / 255,
        size=(size, size),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )[0, 0]
    canvas = torch.zeros(height, width)
    canvas[top : top + size, left : left + size] = resized.clamp(0, 1)
    return canvas


# --- Layouts, dtypes and errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((40, 30), (1, 28, 28)),
        ((1, 40, 30), (1, 28, 28)),
        ((3, 40, 30), (1, 28, 28)),
        ((40, 30, 3), (1, 28, 28)),
        ((40, 30, 1), (1, 28, 28)),
        ((5, 40, 30), (5, 1, 28, 28)),
        ((5, 1, 40, 30), (5, 1, 28, 28)),
        ((5, 3, 40, 30), (5, 1, 28, 28)),
        ((5, 40, 30, 3), (5, 1, 28, 28)),
        ((0, 1, 40, 30), (0, 1, 28, 28)),
    ],
)
def test_layouts(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    out = prepare_digits(np.zeros(shape, dtype=np.uint8))
    assert tuple(out.shape) == expected
    assert out.dtype == torch.float32


def test_uint8_float_numpy_and_rgb_agree(digits: torch.Tensor) -> None:
    photo = 255 - digits[:8]
    from_uint8 = prepare_digits(photo)
    assert torch.allclose(prepare_digits(photo.float() / 255), from_uint8, atol=1e-5)
    assert torch.allclose(prepare_digits(photo.numpy()), from_uint8, atol=1e-5)
    rgb = photo.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).contiguous()
    assert torch.allclose(prepare_digits(rgb), from_uint8, atol=1e-4)
    assert torch.equal(prepare_digits(photo[3, 0]), from_uint8[3])


def test_nan_is_refused() -> None:
    image = torch.zeros(30, 30)
    image[3, 4] = float("nan")
    with pytest.raises(InvalidInputError, match="finite"):
        prepare_digits(image)


@pytest.mark.parametrize(
    "shape", [(28,), (2, 2, 1, 28, 28), (4, 2, 28, 28), (0, 28), (28, 0, 3), ()]
)
def test_wrong_dimensions_or_channels(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInputError):
        prepare_digits(torch.zeros(shape))


def test_message_shows_the_shape() -> None:
    with pytest.raises(InvalidInputError, match=r"\(2, 2, 1, 28, 28\)"):
        prepare_digits(torch.zeros(2, 2, 1, 28, 28))


@pytest.mark.parametrize(
    "array", [np.zeros((28, 28), np.int32), torch.zeros(28, 28, dtype=torch.bool)]
)
def test_wrong_dtype(array: object) -> None:
    with pytest.raises(InvalidTypeError, match="uint8"):
        prepare_digits(array)


def test_wrong_type_and_range() -> None:
    with pytest.raises(InvalidTypeError, match="list"):
        prepare_digits([[0, 1], [1, 0]])
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        prepare_digits(torch.full((28, 28), 255.0))


# --- MNIST stays MNIST ----------------------------------------------------------------


def test_mnist_digits_come_out_unchanged(mnist_test: digitrec.ImageDataset) -> None:
    raw = mnist_test.images[:1000].float() / 255
    prepared = prepare_digits(mnist_test.images[:1000])
    difference = (prepared - raw).abs()
    assert difference.mean() < 0.005
    assert (difference.amax(dim=(1, 2, 3)) < 0.2).float().mean() > 0.98


def test_mnist_accuracy_is_unchanged(
    mnist_train: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, recipe="mlp-fast", epochs=1, progress=False).fit(mnist_train[:20000])
    test = mnist_test[:2000]
    raw = (digitrec.predict(model, test.images) == test.labels).float().mean().item()
    prepared = digitrec.predict(model, prepare_digits(test.images))
    accuracy = (prepared == test.labels).float().mean().item()
    assert raw > 0.9
    assert abs(accuracy - raw) <= 0.003


# --- Edge cases -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_images_give_zeros(value: int) -> None:
    out = prepare_digits(torch.full((2, 50, 70), value, dtype=torch.uint8))
    assert torch.equal(out, torch.zeros(2, 1, 28, 28))


def test_blank_noisy_paper_gives_zeros() -> None:
    generator = torch.Generator().manual_seed(0)
    paper = 200 + 4 * torch.randn(3, 1, 80, 80, generator=generator)
    out = prepare_digits(paper.round().clamp(0, 255).to(torch.uint8))
    assert torch.equal(out, torch.zeros(3, 1, 28, 28))


def test_single_dot_stays_a_dot_in_the_centre() -> None:
    image = torch.zeros(60, 60)
    image[10:12, 40:42] = 1.0
    out = prepare_digits(image)
    height, width = ink_extent(out)
    assert height <= 10
    assert width <= 10
    centre_y, centre_x = centre_of_mass(out)
    assert abs(centre_y - 14) < 0.6
    assert abs(centre_x - 14) < 0.6


def test_ink_touching_the_border_is_kept(digits: torch.Tensor) -> None:
    cut = digits[0, 0, :, 6:].clone()  # the ink box touches the left border after the cut
    cut = cut[cut.amax(1) > 0]  # and the top and bottom ones
    out = prepare_digits(cut)
    assert max(ink_extent(out)) >= 19
    assert out.sum() > 20


def test_two_strokes_of_an_eleven_are_both_kept() -> None:
    image = torch.zeros(60, 80)
    image[10:50, 20:25] = 1.0
    image[10:50, 55:60] = 1.0
    out = prepare_digits(image)[0]
    columns = (out > 0.5).any(0).int()
    assert int((columns[1:] - columns[:-1] == 1).sum()) == 2  # two separate strokes
    assert ink_extent(out)[1] in (19, 20, 21)  # framed together: the pair fills the box


def test_specks_are_dropped() -> None:
    stroke = torch.zeros(80, 80)
    stroke[15:65, 35:41] = 1.0
    specked = stroke.clone()
    specked[3:5, 3:5] = 1.0
    specked[75:77, 70:72] = 0.8
    assert torch.allclose(prepare_digits(specked), prepare_digits(stroke), atol=1e-6)


def test_centre_of_mass_and_box(digits: torch.Tensor) -> None:
    canvas = embed(digits[5, 0], 120, 90, top=50, left=10, scale=2.5)
    out = prepare_digits(canvas)
    assert max(ink_extent(out)) in (19, 20, 21)
    centre_y, centre_x = centre_of_mass(out)
    assert abs(centre_y - 14) < 0.5
    assert abs(centre_x - 14) < 0.5


# --- Polarity and lighting ------------------------------------------------------------


def test_dark_ink_on_light_paper_is_inverted(digits: torch.Tensor) -> None:
    white_on_black = prepare_digits(digits)
    black_on_white = prepare_digits(255 - digits)
    assert (white_on_black - black_on_white).abs().mean() < 0.01


def test_mnist_is_never_inverted(mnist_test: digitrec.ImageDataset) -> None:
    prepared = prepare_digits(mnist_test.images[:1000])
    # Inverted digits would be mostly white: MNIST digits cover about 19% of the frame.
    assert prepared.mean(dim=(1, 2, 3)).max() < 0.5


def test_lighting_gradient_is_removed(digits: torch.Tensor) -> None:
    ramp = torch.linspace(0.45, 1.0, 90).view(1, 90).expand(90, 90)
    ink = embed(digits[7, 0], 90, 90, top=20, left=25, scale=1.6)
    photo = ramp * (0.9 - 0.75 * ink)  # dark ink on paper lit from the right
    out = prepare_digits(photo)
    reference = prepare_digits(ink)
    assert F.cosine_similarity(out.flatten(), reference.flatten(), dim=0) > 0.95


# --- Properties -----------------------------------------------------------------------


@FAST
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**31 - 1),
    as_float=st.booleans(),
)
def test_random_arrays_never_crash(
    batch: int, height: int, width: int, channels: int, seed: int, as_float: bool
) -> None:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, channels, height, width), generator=generator)
    images = images.to(torch.uint8)
    inputs = images.float() / 255 if as_float else images
    out = prepare_digits(inputs)
    assert out.shape == (batch, 1, 28, 28)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0
    assert float(out.max()) <= 1.0
    assert torch.equal(out, prepare_digits(inputs))  # deterministic


@FAST
@given(
    index=st.integers(0, 63),
    height=st.integers(40, 110),
    width=st.integers(40, 110),
    scale=st.floats(1.0, 3.0),
    position=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    invert=st.booleans(),
)
def test_moved_scaled_or_inverted_digits_come_out_the_same(
    digits: torch.Tensor,
    index: int,
    height: int,
    width: int,
    scale: float,
    position: tuple[float, float],
    invert: bool,
) -> None:
    size = max(8, round(28 * scale))
    if size > min(height, width):
        scale = min(height, width) / 28
        size = max(8, round(28 * scale))
    top = round(position[0] * (height - size))
    left = round(position[1] * (width - size))
    canvas = embed(digits[index, 0], height, width, top, left, scale)
    if invert:
        canvas = 1.0 - canvas
    out = prepare_digits(canvas)
    reference = prepare_digits(digits[index])
    # A one-pixel shift of thin strokes alone costs about 0.2 of similarity.
    assert F.cosine_similarity(out.flatten(), reference.flatten(), dim=0) > 0.75


# --- resize_images --------------------------------------------------------------------


def test_resize_pad_keeps_aspect_and_pads_with_the_border() -> None:
    paper = torch.full((1, 1, 20, 40), 0.8)
    paper[0, 0, 5:15, 10:30] = 0.1
    out = resize_images(paper, 20)
    assert out.shape == (1, 1, 20, 20)
    assert torch.allclose(out[0, 0, :5], torch.tensor(0.8))  # padding: the paper's value
    assert torch.allclose(out[0, 0, -5:], torch.tensor(0.8))
    assert out[0, 0, 10, 10] < 0.2  # the dark block, scaled by 0.5, is in the middle


def test_resize_pad_pads_mnist_with_black(digits: torch.Tensor) -> None:
    out = resize_images(digits[:2], (28, 56))
    assert out.shape == (2, 1, 28, 56)
    assert torch.allclose(out[:, :, :, 14:42], digits[:2].float() / 255, atol=1e-6)
    assert out[:, :, :, :14].abs().max() == 0


def test_resize_stretch_and_anti_aliasing() -> None:
    checkerboard = ((torch.arange(64).view(-1, 1) + torch.arange(64).view(1, -1)) % 2).float()
    out = resize_images(checkerboard.view(1, 1, 64, 64), (16, 8), mode="stretch")
    assert out.shape == (1, 1, 16, 8)
    assert torch.allclose(out, torch.tensor(0.5), atol=0.05)  # averaged, not aliased


def test_resize_keeps_channels_and_layouts() -> None:
    images = np.zeros((2, 30, 40, 3), dtype=np.uint8)
    assert resize_images(images, 10).shape == (2, 3, 10, 10)
    assert resize_images(np.zeros((2, 30, 40), dtype=np.uint8), 10).shape == (2, 1, 10, 10)


@pytest.mark.parametrize("size", [0, -3, (10,), (10, 0), 2.5, True])
def test_resize_refuses_bad_sizes(size: object) -> None:
    with pytest.raises(InvalidInputError, match="size"):
        resize_images(torch.zeros(1, 1, 8, 8), size)  # type: ignore[arg-type]


def test_resize_refuses_bad_mode_and_dtype() -> None:
    with pytest.raises(InvalidInputError, match="mode"):
        resize_images(torch.zeros(1, 1, 8, 8), 4, mode="crop")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        resize_images(torch.zeros(1, 1, 8, 8, dtype=torch.int16), 4)


# --- The renderer ---------------------------------------------------------------------


def test_photos_are_deterministic_and_realistic(digits: torch.Tensor) -> None:
    photos = render_photos(digits[:12], seed=3)
    again = render_photos(digits[:12], seed=3)
    assert all(torch.equal(a, b) for a, b in zip(photos, again, strict=False))
    assert not torch.equal(photos[0], render_photos(digits[:1], seed=4)[0])
    for photo in photos:
        height, width, channels = photo.shape
        assert 30 <= height <= 200
        assert 30 <= width <= 200
        assert channels == 3
        assert photo.dtype == torch.uint8
        assert photo.float().median() > 100  # light paper, dark ink
    fixed = render_photos(digits[:3], seed=0, size=(100, 100))
    assert {tuple(photo.shape) for photo in fixed} == {(100, 100, 3)}


def test_prepared_photos_look_like_their_mnist_digit(digits: torch.Tensor) -> None:
    photos = render_photos(digits[:32], seed=1)
    prepared = torch.stack([prepare_digits(photo) for photo in photos])
    reference = prepare_digits(digits[:32])
    similarity = F.cosine_similarity(prepared.flatten(1), reference.flatten(1))
    assert similarity.median() > 0.8
    plain = resize_images(255 - photos[0].permute(2, 0, 1)[None], 28, mode="stretch")
    assert similarity[0] > F.cosine_similarity(
        plain.mean(1).flatten(), reference[0].flatten(), dim=0
    )


def test_tight_crops_fill_their_frame(digits: torch.Tensor) -> None:
    crops = render_tight_crops(digits[:8], 16)
    assert crops.shape == (8, 1, 16, 16)
    assert crops.dtype == torch.uint8
    for crop in crops:
        assert max(ink_extent(crop.float() / 255, level=0.1)) >= 15
    big = render_tight_crops(digits[:2], 64)
    assert big.shape == (2, 1, 64, 64)


def test_the_result_is_an_ordinary_tensor_that_autograd_can_use(digits: torch.Tensor) -> None:
    # The framing runs in inference mode for speed; what it returns must not be an
    # inference tensor, or a model training on prepared digits could not save it.
    prepared = prepare_digits(digits)
    assert not torch.is_inference(prepared)
    weight = torch.ones(1, requires_grad=True)
    torch.autograd.backward((prepared * weight).sum())
    assert weight.grad is not None
    assert torch.isclose(weight.grad, prepared.sum().reshape(1)).all()
    with torch.inference_mode():
        inside = prepare_digits(digits)
    assert torch.equal(inside, prepared)
