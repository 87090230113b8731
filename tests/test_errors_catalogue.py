"""The catalogue of bad inputs: each gets the documented exception, with a clear message.

Every case names the public call, the exact exception type expected (always a
DigitrecError subclass) and a part of the message that says what was expected and
what came. docs/errors.rst summarises this table.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import digitrec
from digitrec import errors


@dataclass(frozen=True)
class Env:
    mlp: digitrec.DigitClassifier
    cnn: digitrec.DigitClassifier
    data: digitrec.ImageDataset
    folder: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, mnist_test: digitrec.ImageDataset) -> Env:
    folder = tmp_path_factory.mktemp("bad")
    files = {
        "empty": b"",
        "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "truncated.idx": bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\x00" * 100,
        "huge.idx": bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 60_000, 60_000),
        "huge.idx.gz": gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 100_000, 1000, 1000)),
        "garbage.gz": b"\x1f\x8b" + b"not really gzip" * 5,
        "labels.idx": bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([1, 2, 3]),
        "images.idx": bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 8, 8) + bytes(128),
        "zero.idx": bytes([0, 0, 8, 3]) + struct.pack(">3I", 2_214_592_512, 4_294_967_295, 0),
        "pickle.safetensors": b"\x80\x04\x95" + b"\x00" * 64,
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    np.savez(folder / "nolabels.npz", train_images=np.zeros((2, 8, 8), np.uint8))
    np.savez(
        folder / "objects.npz",
        train_images=np.array([None, 1], dtype=object),
        train_labels=np.zeros(2),
    )
    np.save(folder / "array.npy", np.zeros(3))
    digitrec.save(digitrec.DigitClassifier(seed=0), folder / "model.safetensors")
    return Env(
        mlp=digitrec.DigitClassifier(seed=0),
        cnn=digitrec.DigitClassifier("cnn", seed=0),
        data=mnist_test[:64],
        folder=folder,
    )


Call = Callable[[Env], Any]
T = digitrec.InvalidTypeError
V = digitrec.InvalidInputError
F = digitrec.DataFileError
N = digitrec.DataNotFoundError
C = digitrec.CheckpointError
D = digitrec.DeviceUnavailableError
Z = digitrec.ChecksumError


def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels but holds almost none."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = b"IDAT" + zlib.compress(b"\x00" * 64)
    idat = struct.pack(">I", len(data) - 4) + data + struct.pack(">I", zlib.crc32(data))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + end


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _dicom_without_pixels(folder: Path) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.PatientName = "Nobody"
    path = folder / "nopixels.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def _flat_folder(folder: Path) -> Path:
    flat = folder / "flat"
    flat.mkdir(exist_ok=True)
    (flat / "a.png").write_bytes(_png_bytes())
    return flat


def _csv(folder: Path, text: str) -> Path:
    path = folder / "list.csv"
    path.write_text(text)
    return path


CASES: list[tuple[str, Call, type[Exception], str]] = [
    # --- single images -----------------------------------------------------------------------
    (
        "image: batch given",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.zeros(2, 1, 28, 28)),
        V,
        r"single image.*4 dimensions",
    ),
    (
        "image: wrong size",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.zeros(32, 32), prepare=False),
        V,
        r"\(1, 32, 32\).*expects \(1, 28, 28\)",
    ),
    (
        "image: wrong channels",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.zeros(3, 28, 28), prepare=False),
        V,
        r"\(3, 28, 28\)",
    ),
    (
        "image: 5 channels",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.zeros(5, 28, 28)),
        V,
        "1 or 3 channels",
    ),
    (
        "image: NaN",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.full((28, 28), float("nan"))),
        V,
        "finite",
    ),
    (
        "image: inf",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.full((28, 28), float("inf"))),
        V,
        "finite",
    ),
    (
        "image: float above 1",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.full((28, 28), 255.0)),
        V,
        r"\[0, 1\].*255",
    ),
    (
        "image: negative float",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.full((28, 28), -0.5)),
        V,
        r"\[0, 1\]",
    ),
    (
        "image: int64 pixels",
        lambda e: digitrec.get_predicted_label(e.mlp, np.zeros((28, 28), np.int64)),
        T,
        "uint8.*int64",
    ),
    (
        "image: bool pixels",
        lambda e: digitrec.get_predicted_label(e.mlp, torch.zeros(28, 28, dtype=torch.bool)),
        T,
        "torch.bool",
    ),
    (
        "image: python list",
        lambda e: digitrec.get_predicted_label(e.mlp, [[0] * 28] * 28),
        T,
        "got list",
    ),
    (
        "image: object array",
        lambda e: digitrec.get_predicted_label(e.mlp, np.array([[None]])),
        T,
        "dtype object",
    ),
    (
        "image: not a model",
        lambda e: digitrec.get_predicted_label(torch.nn.Linear(2, 2), torch.zeros(28, 28)),  # type: ignore[arg-type]
        T,
        "DigitClassifier",
    ),
    # --- batches -----------------------------------------------------------------------------
    (
        "batch: wrong size",
        lambda e: digitrec.predict(e.mlp, torch.zeros(4, 14, 14), prepare=False),
        V,
        r"\(1, 14, 14\)",
    ),
    (
        "batch: rank 5",
        lambda e: digitrec.predict(e.mlp, torch.zeros(1, 1, 1, 28, 28)),
        V,
        "5 dimensions",
    ),
    (
        "batch: cnn wrong channels",
        lambda e: digitrec.predict_proba(e.cnn, torch.zeros(2, 3, 28, 28), prepare=False),
        V,
        r"\(3, 28, 28\).*\(1, 28, 28\)",
    ),
    (
        "batch: batch_size 0",
        lambda e: digitrec.predict(e.mlp, torch.zeros(2, 28, 28), batch_size=0),
        V,
        "batch_size must be a positive integer, got 0",
    ),
    (
        "batch: forward wrong shape",
        lambda e: e.mlp(torch.zeros(2, 784)),
        V,
        r"\(N, 1, 28, 28\).*\(2, 784\)",
    ),
    (
        "abstain: threshold 2",
        lambda e: digitrec.predict_or_abstain(e.mlp, e.data, min_confidence=2),
        V,
        r"\[0, 1\], got 2",
    ),
    # --- labels and data sets ------------------------------------------------------------------
    (
        "labels: floats",
        lambda e: digitrec.ImageDataset.from_arrays(np.zeros((2, 8, 8)), np.zeros(2)),
        T,
        "integers.*float64",
    ),
    (
        "labels: negative",
        lambda e: digitrec.ImageDataset.from_arrays(np.zeros((2, 8, 8)), np.array([0, -3])),
        V,
        ">= 0, got -3",
    ),
    (
        "labels: length",
        lambda e: digitrec.ImageDataset.from_arrays(np.zeros((2, 8, 8)), np.zeros(3, int)),
        V,
        r"\(2,\) to match 2 images.*got \(3,\)",
    ),
    (
        "labels: 3-D",
        lambda e: digitrec.ImageDataset.from_arrays(np.zeros((2, 8, 8)), np.zeros((2, 3, 2), int)),
        V,
        r"\(N,\) or \(N, 1\).*\(2, 3, 2\)",
    ),
    (
        "labels: multi-label not 0/1",
        lambda e: digitrec.ImageDataset.from_arrays(np.zeros((2, 8, 8)), np.full((2, 3), 2)),
        V,
        "multi-label labels must be 0 or 1, got values from 2 to 2",
    ),
    (
        "labels: beyond class names",
        lambda e: digitrec.ImageDataset.from_arrays(
            np.zeros((2, 8, 8)), np.array([0, 5]), class_names=["a", "b"]
        ),
        V,
        "< 2.*got 5",
    ),
    ("data: empty", lambda e: digitrec.evaluate_accuracy(e.mlp, e.data[:0]), V, "holds no images"),
    (
        "data: not a data set",
        lambda e: digitrec.evaluate(e.mlp, (e.data.images, e.data.labels)),  # type: ignore[arg-type]
        T,
        "ImageDataset.*tuple",
    ),
    (
        "data: label beyond model",
        lambda e: digitrec.evaluate(digitrec.DigitClassifier(num_classes=3), e.data),
        V,
        r"label \d.*3 classes",
    ),
    (
        "data: image shape vs model",
        lambda e: digitrec.calibrate(digitrec.DigitClassifier(input_shape=(1, 32, 32)), e.data),
        V,
        r"\(1, 28, 28\).*\(1, 32, 32\)",
    ),
    ("split: too large", lambda e: e.data.split(64), V, r"\[1, 63\] for 64 images, got 64"),
    # --- image files (read_image, read_dicom, folders, CSV) ---------------------------------
    ("read_image: empty bytes", lambda e: digitrec.read_image(b""), F, r"empty \(0 bytes\)"),
    (
        "read_image: missing file",
        lambda e: digitrec.read_image(e.folder / "absent.png"),
        N,
        "no image file at",
    ),
    ("read_image: a folder", lambda e: digitrec.read_image(e.folder), F, "is a folder, expected"),
    (
        "read_image: not an image",
        lambda e: digitrec.read_image(b"hello, world"),
        F,
        "is not a PNG, JPEG, BMP, TIFF, WebP, .npy or DICOM image",
    ),
    (
        "read_image: decompression bomb",
        lambda e: digitrec.read_image(_png_declaring(100_000, 100_000)),
        F,
        "too large to decode safely|more than max_pixels",
    ),
    (
        "read_image: above max_pixels",
        lambda e: digitrec.read_image(_png_declaring(9000, 9000)),
        F,
        "more than max_pixels=64,000,000",
    ),
    (
        "read_image: truncated PNG",
        lambda e: digitrec.read_image(_png_bytes()[:2000]),
        F,
        r"cannot be decoded \(truncated or corrupt\?\)|corrupt image header",
    ),
    (
        "read_image: int32 npy",
        lambda e: digitrec.read_image(_npy_bytes(np.zeros((4, 4), np.int32))),
        F,
        "must hold uint8, uint16 or float pixels",
    ),
    (
        "read_image: npy above 1",
        lambda e: digitrec.read_image(_npy_bytes(np.full((4, 4), 2.0))),
        F,
        r"must lie in \[0, 1\]",
    ),
    (
        "read_image: bad mode",
        lambda e: digitrec.read_image(_png_bytes(), mode="grey"),  # type: ignore[arg-type]
        V,
        "mode must be 'gray', 'rgb' or None",
    ),
    ("read_image: not a path", lambda e: digitrec.read_image(42), T, "source must be a path"),  # type: ignore[arg-type]
    (
        "read_dicom: no pixel data",
        lambda e: digitrec.read_dicom(_dicom_without_pixels(e.folder)),
        F,
        "has no pixel data",
    ),
    (
        "read_dicom: bad window",
        lambda e: digitrec.read_dicom(_dicom_without_pixels(e.folder), window=(40, 0)),
        V,
        r"window must be a finite \(center, width\)",
    ),
    (
        "from_folder: missing",
        lambda e: digitrec.ImageDataset.from_folder(e.folder / "absent"),
        N,
        "no folder at",
    ),
    (
        "from_folder: no class folders",
        lambda e: digitrec.ImageDataset.from_folder(_flat_folder(e.folder)),
        F,
        "has no class folders",
    ),
    (
        "from_csv: missing column",
        lambda e: digitrec.ImageDataset.from_csv(_csv(e.folder, "path,label\na.png,1\n")),
        F,
        "has no column 'file'",
    ),
    (
        "from_folder: bad size",
        lambda e: digitrec.ImageDataset.from_folder(e.folder, size=0),
        V,
        "size must be None, a positive integer",
    ),
    (
        "prepare_digits: 4 channels",
        lambda e: digitrec.prepare_digits(torch.zeros(2, 4, 28, 28)),
        V,
        "channels",
    ),
    (
        "predict: prepare not a bool",
        lambda e: digitrec.predict(e.mlp, torch.zeros(1, 28, 28), prepare="yes"),  # type: ignore[arg-type]
        V,
        "prepare must be True, False or None",
    ),
    (
        "pretrained: unknown name",
        lambda e: digitrec.pretrained("mnist-resnet"),  # type: ignore[arg-type]
        V,
        "name must be one of",
    ),
    # --- settings ------------------------------------------------------------------------------
    (
        "trainer: epochs 0",
        lambda e: digitrec.Trainer(e.mlp, epochs=0),
        V,
        "epochs must be a positive integer, got 0",
    ),
    (
        "trainer: negative lr",
        lambda e: digitrec.Trainer(e.mlp, lr=-1.0),
        V,
        "lr must be a finite number > 0, got -1.0",
    ),
    (
        "trainer: NaN lr",
        lambda e: digitrec.Trainer(e.mlp, lr=float("nan")),
        V,
        "lr must be a finite number",
    ),
    (
        "trainer: optimizer name",
        lambda e: digitrec.Trainer(e.mlp, optimizer="rmsprop"),  # type: ignore[arg-type]
        V,
        r"one of \('sgd', 'adam', 'adamw'\), got 'rmsprop'",
    ),
    (
        "trainer: recipe name",
        lambda e: digitrec.Trainer(e.mlp, recipe="fastest"),
        V,
        "recipe must be a TrainConfig or one of",
    ),
    (
        "trainer: momentum 1",
        lambda e: digitrec.Trainer(e.mlp, momentum=1.0),
        V,
        r"momentum must be a finite number in \[0, 1\), got 1.0",
    ),
    (
        "trainer: batch_size float",
        lambda e: digitrec.Trainer(e.mlp, batch_size=64.0),  # type: ignore[arg-type]
        V,
        "batch_size must be a positive integer, got 64.0",
    ),
    (
        "model: architecture name",
        lambda e: digitrec.DigitClassifier("vgg"),
        V,
        r"arch must be one of \('mlp', 'cnn', 'resnet'\) or a name registered.*got 'vgg'",
    ),
    (
        "model: 2 channels",
        lambda e: digitrec.DigitClassifier(input_shape=(2, 28, 28)),
        V,
        r"1 or 3 channels and sides >= 8, got \(2, 28, 28\)",
    ),
    (
        "model: 1 class",
        lambda e: digitrec.DigitClassifier(num_classes=1),
        V,
        "num_classes must be an integer >= 2, got 1",
    ),
    (
        "device: unknown",
        lambda e: digitrec.Trainer(e.mlp, device="tpu"),
        V,
        r"'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got 'tpu'",
    ),
    (
        "device: wrong type",
        lambda e: digitrec.predict(e.mlp, e.data, device=3),  # type: ignore[arg-type]
        T,
        "str or torch.device, got int",
    ),
    (
        "callback: not a callback",
        lambda e: digitrec.Trainer(e.mlp, callbacks=[print]),  # type: ignore[list-item]
        T,
        "Callback",
    ),
    # --- files ---------------------------------------------------------------------------------
    (
        "mnist: unknown split",
        lambda e: digitrec.load_mnist("valid"),  # type: ignore[arg-type]
        V,
        r"'train' or 'test', got 'valid'",
    ),
    (
        "mnist: empty root",
        lambda e: digitrec.load_mnist("test", root=e.folder),
        N,
        "t10k-images-idx3-ubyte not found",
    ),
    (
        "idx: missing",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "none", e.folder / "labels.idx"),
        N,
        "no IDX file at",
    ),
    (
        "idx: empty",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "empty", e.folder / "labels.idx"),
        F,
        "an empty file",
    ),
    (
        "idx: bad magic",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "png", e.folder / "labels.idx"),
        F,
        "not an IDX file.*89 50 4e 47",
    ),
    (
        "idx: truncated",
        lambda e: digitrec.ImageDataset.from_idx(
            e.folder / "truncated.idx", e.folder / "labels.idx"
        ),
        F,
        "7,840 bytes of data.*truncated",
    ),
    (
        "idx: gigantic header",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "huge.idx", e.folder / "labels.idx"),
        F,
        "holds at most 0",
    ),
    (
        "idx: gzip bomb header",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "huge.idx.gz", e.folder / "labels.idx"),
        F,
        r"\(100000, 1000, 1000\)",
    ),
    (
        "idx: gzip garbage",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "garbage.gz", e.folder / "labels.idx"),
        F,
        "not a readable IDX file",
    ),
    (
        "idx: count mismatch",
        lambda e: digitrec.ImageDataset.from_idx(e.folder / "images.idx", e.folder / "labels.idx"),
        V,
        "2 images but the labels file 3",
    ),
    (
        "npz: missing",
        lambda e: digitrec.ImageDataset.from_npz(e.folder / "none.npz", "train"),
        N,
        r"no \.npz file",
    ),
    (
        "npz: missing keys",
        lambda e: digitrec.ImageDataset.from_npz(e.folder / "nolabels.npz", "train"),
        F,
        r"no \['train_labels'\]",
    ),
    (
        "npz: object arrays",
        lambda e: digitrec.ImageDataset.from_npz(e.folder / "objects.npz", "train"),
        F,
        "not a readable",
    ),
    (
        "npz: bare .npy",
        lambda e: digitrec.ImageDataset.from_npz(e.folder / "array.npy", "train"),
        F,
        "single numpy array",
    ),
    (
        "npz: split name",
        lambda e: digitrec.ImageDataset.from_npz(e.folder / "nolabels.npz", "validation"),  # type: ignore[arg-type]
        V,
        r"\('train', 'val', 'test'\), got 'validation'",
    ),
    (
        "model file: missing",
        lambda e: digitrec.load(e.folder / "none.safetensors"),
        N,
        "no model file at",
    ),
    (
        "model file: pickle",
        lambda e: digitrec.load(e.folder / "pickle.safetensors"),
        C,
        "not a safetensors file",
    ),
    ("model file: empty", lambda e: digitrec.load(e.folder / "empty"), C, "not a safetensors file"),
    (
        "model file: as training checkpoint",
        lambda e: digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=1, progress=False).fit(
            e.data, resume_from=e.folder / "model.safetensors"
        ),
        C,
        "not a training checkpoint",
    ),
    (
        "model file: metadata",
        lambda e: digitrec.save(e.mlp, e.folder / "x.safetensors", metadata={"t": object()}),
        V,
        "JSON-serializable",
    ),
    (
        "training checkpoint: EarlyStopping state",
        lambda e: digitrec.EarlyStopping().load_state_dict({"best_epoch": -1}),
        C,
        "EarlyStopping state in the checkpoint must hold a best epoch >= 0",
    ),
    # --- out-of-distribution scores and explanations ---------------------------------------------
    (
        "ood: wrong model for the statistics",
        lambda e: digitrec.ood_scores(
            digitrec.DigitClassifier(seed=1), e.data, detector=digitrec.fit_ood(e.mlp, e.data)
        ),
        V,
        "wrong model for the statistics: the model's weights differ",
    ),
    (
        "ood: images of the wrong shape",
        lambda e: digitrec.ood_scores(
            e.mlp, torch.zeros(2, 1, 32, 32), detector=digitrec.fit_ood(e.mlp, e.data)
        ),
        V,
        r"images of shape \(C, H, W\) = \(1, 32, 32\) do not fit the model",
    ),
    (
        "ood: detector of another type",
        lambda e: digitrec.ood_scores(e.mlp, e.data, detector=object()),  # type: ignore[arg-type]
        T,
        "detector must be a digitrec.OODDetector, got object",
    ),
    (
        "ood: statistics of another format",
        lambda e: digitrec.OODDetector.from_state({"format": "x"}, {}),
        C,
        "must have format 'digitrec.ood/2', got 'x'",
    ),
    (
        "ood: k over the bank",
        lambda e: digitrec.fit_ood(e.mlp, e.data, k=1000),
        V,
        "k must be at most the bank's",
    ),
    (
        "ood: own network without nn.Linear",
        lambda e: digitrec.fit_ood(
            digitrec.DigitClassifier.from_module(
                torch.nn.Sequential(torch.nn.Conv2d(1, 10, 28), torch.nn.Flatten()),
                input_shape=(1, 28, 28),
                num_classes=10,
            ),
            e.data,
        ),
        V,
        "last nn.Linear layer, and Sequential has none",
    ),
    (
        "explain: unknown method",
        lambda e: digitrec.explain(e.mlp, e.data.images[:1], method="nope"),  # type: ignore[arg-type]
        V,
        "method must be one of 'integrated_gradients', 'saliency', 'occlusion', got 'nope'",
    ),
    (
        "explain: images of the wrong shape",
        lambda e: digitrec.explain(e.mlp, torch.zeros(1, 1, 32, 32)),
        V,
        "do not fit the model, which expects",
    ),
]


def test_the_catalogue_is_large() -> None:
    assert len(CASES) >= 40
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("name", "call", "expected", "message"), CASES, ids=[case[0] for case in CASES]
)
def test_bad_input_gets_the_documented_error(
    env: Env, name: str, call: Call, expected: type[Exception], message: str
) -> None:
    with pytest.raises(digitrec.DigitrecError) as info:
        call(env)
    assert type(info.value) is expected, f"{name}: {type(info.value).__name__}: {info.value}"
    assert re.search(message, str(info.value)), f"{name}: {info.value!s} does not match {message!r}"
    assert type(info.value).__name__ in errors.__all__


def test_every_error_class_fits_its_builtin() -> None:
    assert issubclass(digitrec.InvalidInputError, ValueError)
    assert issubclass(digitrec.InvalidTypeError, TypeError)
    assert issubclass(digitrec.DataNotFoundError, FileNotFoundError)
    assert issubclass(digitrec.CheckpointError, ValueError)
    assert issubclass(digitrec.DeviceUnavailableError, RuntimeError)
    assert issubclass(digitrec.MissingDependencyError, ImportError)
    assert issubclass(Z, F)
