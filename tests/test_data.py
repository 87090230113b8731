from __future__ import annotations

import gzip
import importlib.util
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import digitrec
from digitrec.data import mnist as data_module
from tests.conftest import idx_bytes, write_idx

BUNDLED = resources.files("digitrec") / "_data"
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- load_mnist -----------------------------------------------------------------------------


def test_bundled_test_split_is_mnist(mnist_test: digitrec.ImageDataset) -> None:
    assert len(mnist_test) == 10_000
    assert mnist_test.images.shape == (10_000, 1, 28, 28)
    assert mnist_test.images.dtype == torch.uint8
    assert mnist_test.labels.dtype == torch.int64
    assert mnist_test.class_names == tuple("0123456789")
    assert torch.bincount(mnist_test.labels).tolist() == TEST_LABEL_COUNTS
    # Real digits: dark background, bright strokes.
    assert int(mnist_test.images.max()) == 255
    assert 0.10 < mnist_test.images.float().mean().item() / 255 < 0.16


def test_bundled_train_split_is_mnist(mnist_train: digitrec.ImageDataset) -> None:
    assert len(mnist_train) == 60_000
    assert mnist_train.image_shape == (1, 28, 28)
    assert sorted(torch.unique(mnist_train.labels).tolist()) == list(range(10))


def _copy_bundled(folder: Path, *, decompress: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        source = Path(str(BUNDLED / f"{name}.gz"))
        if decompress:
            (folder / name).write_bytes(gzip.decompress(source.read_bytes()))
        else:
            shutil.copy(source, folder / f"{name}.gz")


@pytest.mark.parametrize(
    ("layout", "decompress"), [("flat", False), ("flat", True), ("torchvision", True)]
)
def test_load_mnist_from_root(
    tmp_path: Path, mnist_test: digitrec.ImageDataset, layout: str, decompress: bool
) -> None:
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    _copy_bundled(folder, decompress=decompress)
    loaded = digitrec.load_mnist("test", root=tmp_path)
    assert torch.equal(loaded.images, mnist_test.images)
    assert torch.equal(loaded.labels, mnist_test.labels)


def test_load_mnist_missing_root_names_offline_options(tmp_path: Path) -> None:
    with pytest.raises(digitrec.DataNotFoundError, match="root=None") as info:
        digitrec.load_mnist("train", root=tmp_path)
    assert "train-images-idx3-ubyte" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_load_mnist_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(digitrec.DataNotFoundError, match=str(tmp_path)):
        digitrec.load_mnist("test", root="~")


def test_load_mnist_rejects_a_modified_file(tmp_path: Path) -> None:
    _copy_bundled(tmp_path, decompress=True)
    raw = bytearray((tmp_path / "t10k-labels-idx1-ubyte").read_bytes())
    raw[-1] = (raw[-1] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(digitrec.ChecksumError, match="from_idx"):
        digitrec.load_mnist("test", root=tmp_path)


def test_corrupt_bundled_file_says_how_to_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_bundled(tmp_path, decompress=False)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[5000] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(data_module, "_bundled_root", lambda: tmp_path)
    with pytest.raises(digitrec.ChecksumError, match="reinstall"):
        digitrec.load_mnist("test")


def test_load_mnist_rejects_unknown_split() -> None:
    with pytest.raises(digitrec.InvalidInputError, match=r"'train' or 'test'.*'val'"):
        digitrec.load_mnist("val")  # type: ignore[arg-type]


def test_download_needs_a_root() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="root"):
        digitrec.load_mnist("test", download=True)


def test_download_without_torchvision_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec  # the function digitrec.data.mnist calls
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torchvision" else real_find_spec(name, *a),
    )
    with pytest.raises(digitrec.MissingDependencyError, match=r"digitrec\[vision\]"):
        digitrec.load_mnist("test", root=tmp_path, download=True)


def test_download_skipped_when_files_are_present(tmp_path: Path) -> None:
    # Files already there: nothing is fetched, so this works without torchvision or a network.
    _copy_bundled(tmp_path, decompress=False)
    assert len(digitrec.load_mnist("test", root=tmp_path, download=True)) == 10_000


# --- IDX reader --------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_from_idx_reads_any_pair(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 12, 9), dtype=np.uint8)
    labels = rng.integers(0, 5, size=7).astype(np.uint8)
    data = digitrec.ImageDataset.from_idx(
        write_idx(tmp_path / "i", images, compress=compress),
        write_idx(tmp_path / "l", labels, compress=compress),
        class_names=list("abcde"),
    )
    assert data.image_shape == (1, 12, 9)
    assert np.array_equal(data.images[:, 0].numpy(), images)
    assert data.labels.tolist() == labels.tolist()
    assert data.class_names == tuple("abcde")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_from_idx_accepts_wider_label_types(
    tmp_path: Path, dtype: type[np.signedinteger[Any]]
) -> None:
    labels = np.array([3, 1, 2], dtype=dtype)
    data = digitrec.ImageDataset.from_idx(
        write_idx(tmp_path / "i", np.zeros((3, 8, 8), np.uint8)), write_idx(tmp_path / "l", labels)
    )
    assert data.labels.tolist() == [3, 1, 2]


def _good_pair(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_idx(tmp_path / "images", np.zeros((4, 8, 8), np.uint8)),
        write_idx(tmp_path / "labels", np.arange(4, dtype=np.uint8)),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n", "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),
        (idx_bytes(np.zeros((4, 8, 8), np.uint8))[:-10], "truncated or corrupt"),
        (idx_bytes(np.zeros((4, 8, 8), np.uint8)) + b"extra", "trailing bytes"),
        (b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3, "truncated or corrupt"),
        (
            gzip.compress(b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3, mtime=0),
            "truncated or corrupt",
        ),
        (b"\x1f\x8b" + b"garbage" * 10, "not a readable IDX file"),
        (
            gzip.compress(idx_bytes(np.zeros((4, 8, 8), np.uint8)), mtime=0)[:-12],
            "not a readable IDX file",
        ),
    ],
    ids=[
        "empty",
        "png",
        "short-header",
        "short-data",
        "trailing",
        "huge-dims",
        "gzip-huge-dims",
        "gzip-garbage",
        "gzip-cut",
    ],
)
def test_from_idx_rejects_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    _, labels = _good_pair(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(content)
    started = time.perf_counter()
    with pytest.raises(digitrec.DataFileError, match=message):
        digitrec.ImageDataset.from_idx(bad, labels)
    assert time.perf_counter() - started < 1.0


def test_from_idx_rejects_labels_as_images(tmp_path: Path) -> None:
    _, labels = _good_pair(tmp_path)
    with pytest.raises(digitrec.DataFileError, match=r"uint8 images of shape \(N, H, W\)"):
        digitrec.ImageDataset.from_idx(labels, labels)


def test_from_idx_rejects_count_mismatch(tmp_path: Path) -> None:
    images, _ = _good_pair(tmp_path)
    labels = write_idx(tmp_path / "five", np.arange(5, dtype=np.uint8))
    with pytest.raises(digitrec.InvalidInputError, match="4 images but the labels file 5"):
        digitrec.ImageDataset.from_idx(images, labels)


def test_from_idx_missing_file(tmp_path: Path) -> None:
    images, _ = _good_pair(tmp_path)
    with pytest.raises(digitrec.DataNotFoundError, match="nope"):
        digitrec.ImageDataset.from_idx(images, tmp_path / "nope")


# --- from_arrays -----------------------------------------------------------------------------

LAYOUTS = st.sampled_from(["NHW", "N1HW", "NHW1", "N3HW", "NHW3"])


@settings(max_examples=60, deadline=None)
@given(
    layout=LAYOUTS,
    n=st.integers(1, 5),
    h=st.integers(4, 12),  # sides of 1 or 3 make (N, C, H, W) and (N, H, W, C) ambiguous
    w=st.integers(4, 12),
    as_float=st.booleans(),
    as_torch=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_from_arrays_layouts_round_trip(
    layout: str, n: int, h: int, w: int, as_float: bool, as_torch: bool, seed: int
) -> None:
    channels = 3 if "3" in layout else 1
    expected = np.random.default_rng(seed).integers(
        0, 256, size=(n, channels, h, w), dtype=np.uint8
    )
    array = {
        "NHW": expected[:, 0],
        "N1HW": expected,
        "N3HW": expected,
        "NHW1": expected.transpose(0, 2, 3, 1),
        "NHW3": expected.transpose(0, 2, 3, 1),
    }[layout]
    pixels = array / 255.0 if as_float else array
    source = torch.from_numpy(np.ascontiguousarray(pixels)) if as_torch else pixels
    data = digitrec.ImageDataset.from_arrays(source, np.zeros(n, dtype=np.int64))
    assert data.images.dtype == torch.uint8
    assert data.image_shape == (channels, h, w)
    assert np.array_equal(data.images.numpy(), expected)


@settings(max_examples=30, deadline=None)
@given(
    labels=hnp.arrays(
        st.sampled_from([np.uint8, np.int16, np.int32, np.int64]),
        st.integers(1, 20),
        elements=st.integers(0, 100),
    )
)
def test_from_arrays_label_dtypes(labels: np.ndarray) -> None:
    data = digitrec.ImageDataset.from_arrays(np.zeros((len(labels), 8, 8), np.uint8), labels)
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == labels.astype(np.int64).tolist()


def test_ambiguous_layout_is_read_channels_first() -> None:
    data = digitrec.ImageDataset.from_arrays(np.zeros((2, 3, 8, 3), np.uint8), np.zeros(2, int))
    assert data.image_shape == (3, 8, 3)


def test_from_arrays_accepts_medmnist_column_labels_and_big_endian() -> None:
    images = np.zeros((3, 8, 8), dtype=">f4")
    data = digitrec.ImageDataset.from_arrays(images, np.array([[1], [0], [1]]))
    assert data.labels.tolist() == [1, 0, 1]


def test_from_arrays_copies_its_input() -> None:
    images = np.zeros((2, 8, 8), np.uint8)
    data = digitrec.ImageDataset.from_arrays(images, np.array([0, 1]))
    images[:] = 255
    assert int(data.images.max()) == 0


@pytest.mark.parametrize(
    ("images", "labels", "error", "message"),
    [
        (
            np.zeros((2, 8, 8), np.int64),
            np.zeros(2, int),
            digitrec.InvalidTypeError,
            "uint8.*int64",
        ),
        (np.full((2, 8, 8), 2.0), np.zeros(2, int), digitrec.InvalidInputError, r"\[0, 1\].*2"),
        (np.full((2, 8, 8), np.nan), np.zeros(2, int), digitrec.InvalidInputError, "finite"),
        (np.zeros((2, 8)), np.zeros(2, int), digitrec.InvalidInputError, "2 dimensions"),
        (np.zeros((2, 5, 8, 8)), np.zeros(2, int), digitrec.InvalidInputError, "1 or 3 channels"),
        ([[0, 1]], np.zeros(1, int), digitrec.InvalidTypeError, "list"),
        (np.zeros((2, 8, 8)), np.zeros(2), digitrec.InvalidTypeError, "integers"),
        (
            np.zeros((2, 8, 8)),
            np.zeros((2, 2, 2), int),  # (N, L) is multi-label data; 3-D is nothing
            digitrec.InvalidInputError,
            r"\(N,\) or \(N, 1\)",
        ),
        (np.zeros((2, 8, 8)), np.zeros(3, int), digitrec.InvalidInputError, r"\(2,\) to match 2"),
        (np.zeros((2, 8, 8)), np.array([0, -1]), digitrec.InvalidInputError, ">= 0"),
    ],
)
def test_from_arrays_rejects_bad_input(
    images: object, labels: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        digitrec.ImageDataset.from_arrays(images, labels)


def test_class_names_must_cover_labels() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="< 2"):
        digitrec.ImageDataset.from_arrays(
            np.zeros((2, 8, 8)), np.array([0, 2]), class_names=["a", "b"]
        )
    with pytest.raises(digitrec.InvalidInputError, match="distinct"):
        digitrec.ImageDataset.from_arrays(
            np.zeros((2, 8, 8)), np.array([0, 1]), class_names=["a", "a"]
        )


def test_constructor_insists_on_canonical_tensors() -> None:
    with pytest.raises(digitrec.InvalidTypeError, match="from_arrays"):
        digitrec.ImageDataset(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(digitrec.InvalidTypeError, match="int64"):
        digitrec.ImageDataset(
            torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32)
        )


# --- indexing and split -------------------------------------------------------------------------


def _numbered(count: int) -> digitrec.ImageDataset:
    images = (
        torch.arange(count, dtype=torch.uint8)
        .view(count, 1, 1, 1)
        .expand(count, 1, 8, 8)
        .contiguous()
    )
    return digitrec.ImageDataset(images, torch.arange(count))


def test_indexing(mnist_test: digitrec.ImageDataset) -> None:
    image, label = mnist_test[0]
    assert image.shape == (1, 28, 28)
    assert label == 7  # MNIST's first test digit
    assert isinstance(label, int)
    assert mnist_test[-1][1] == int(mnist_test.labels[-1])
    with pytest.raises(IndexError, match="10000"):
        mnist_test[10_000]
    subset = mnist_test[10:20]
    assert isinstance(subset, digitrec.ImageDataset)
    assert torch.equal(subset.labels, mnist_test.labels[10:20])
    assert subset.class_names == mnist_test.class_names
    assert mnist_test[[3, 1]].labels.tolist() == [
        int(mnist_test.labels[3]),
        int(mnist_test.labels[1]),
    ]
    mask = mnist_test.labels == 0
    assert len(mnist_test[mask]) == TEST_LABEL_COUNTS[0]


def test_works_with_dataloader() -> None:
    # ImageDataset is a map-style data set without subclassing torch's Dataset, whose type
    # DataLoader's stubs ask for.
    loader: torch.utils.data.DataLoader[tuple[torch.Tensor, Any]] = torch.utils.data.DataLoader(
        _numbered(10),  # type: ignore[arg-type]
        batch_size=4,
    )
    images, labels = next(iter(loader))
    assert images.shape == (4, 1, 8, 8)
    assert labels.tolist() == [0, 1, 2, 3]


@settings(max_examples=50, deadline=None)
@given(count=st.integers(2, 60), data=st.data())
def test_split_partitions_repeatably(count: int, data: st.DataObject) -> None:
    dataset = _numbered(count)
    val_size = data.draw(
        st.one_of(
            st.integers(1, count - 1),
            st.floats(0.01, 0.99).filter(lambda f: 1 <= round(f * count) < count),
        )
    )
    seed = data.draw(st.integers(0, 1000))
    train, val = dataset.split(val_size, seed=seed)
    expected_val = val_size if isinstance(val_size, int) else round(val_size * count)
    assert len(val) == expected_val
    assert sorted(train.labels.tolist() + val.labels.tolist()) == list(range(count))
    again_train, again_val = dataset.split(val_size, seed=seed)
    assert torch.equal(val.labels, again_val.labels)
    assert torch.equal(train.images, again_train.images)


def test_split_seed_matters(mnist_test: digitrec.ImageDataset) -> None:
    _, first = mnist_test.split(0.1, seed=0)
    _, second = mnist_test.split(0.1, seed=1)
    assert not torch.equal(first.labels, second.labels)


@pytest.mark.parametrize("val_size", [0, 10, 0.0, 1.0, 1.5, -3])
def test_split_rejects_empty_parts(val_size: float) -> None:
    with pytest.raises(digitrec.InvalidInputError, match="non-empty"):
        _numbered(10).split(val_size)


def test_repr() -> None:
    assert repr(_numbered(3)) == "ImageDataset(n=3, image_shape=(1, 8, 8))"


# --- MedMNIST .npz ------------------------------------------------------------------------------

PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)


@pytest.mark.skipif(
    not PNEUMONIA.is_file(), reason="PneumoniaMNIST is not in ../shared/data/medmnist"
)
@pytest.mark.parametrize(
    ("split", "count", "normal"), [("train", 4708, 1214), ("val", 524, 135), ("test", 624, 234)]
)
def test_from_npz_reads_pneumoniamnist(split: str, count: int, normal: int) -> None:
    data = digitrec.ImageDataset.from_npz(PNEUMONIA, split, class_names=["normal", "pneumonia"])  # type: ignore[arg-type]
    assert len(data) == count
    assert data.image_shape == (1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [normal, count - normal]
    assert data.class_names == ("normal", "pneumonia")


def test_from_npz_rgb_layout(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "rgb.npz", val_images=rgb, val_labels=np.arange(5).reshape(5, 1))
    data = digitrec.ImageDataset.from_npz(tmp_path / "rgb.npz", "val")
    assert data.image_shape == (3, 28, 28)
    assert np.array_equal(data.images.permute(0, 2, 3, 1).numpy(), rgb)


def test_from_npz_refuses_pickles_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = np.array([_Explode(str(marker))], dtype=object)
    np.savez(tmp_path / "evil.npz", test_images=payload, test_labels=np.zeros(1, np.int64))
    with pytest.raises(digitrec.DataFileError, match=r"not a readable \.npz"):
        digitrec.ImageDataset.from_npz(tmp_path / "evil.npz", "test")
    assert not marker.exists()


class _Explode:
    """Unpickling this would create a file: proof that something ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (self.path, "pwned"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"not a readable \.npz"),
        (b"PK\x03\x04 truncated zip", r"not a readable \.npz"),
        (b"just text", r"not a readable \.npz"),
    ],
)
def test_from_npz_rejects_broken_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.npz").write_bytes(content)
    with pytest.raises(digitrec.DataFileError, match=message):
        digitrec.ImageDataset.from_npz(tmp_path / "bad.npz", "train")


def test_from_npz_names_missing_keys_and_bad_splits(tmp_path: Path) -> None:
    np.savez(tmp_path / "part.npz", train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(
        digitrec.DataFileError, match=r"no \['train_labels'\].*holds \['train_images'\]"
    ):
        digitrec.ImageDataset.from_npz(tmp_path / "part.npz", "train")
    with pytest.raises(digitrec.InvalidInputError, match="split must be one of"):
        digitrec.ImageDataset.from_npz(tmp_path / "part.npz", "validation")  # type: ignore[arg-type]
    with pytest.raises(digitrec.DataNotFoundError, match=r"missing\.npz"):
        digitrec.ImageDataset.from_npz(tmp_path / "missing.npz", "train")
