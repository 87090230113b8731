"""Tests that kill mutants which survived the rest of the suite (see docs/quality.rst).

Each test pins a behaviour a mutation testing run showed unpinned: a boundary, an
exact message, an error type or a numeric formula. They are grouped by module.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec
from digitrec._checks import check_bool, check_choice, check_int, check_number, check_positive_int
from digitrec.errors import CheckpointError, DataFileError, DataNotFoundError, InvalidInputError
from digitrec.evaluation.report import (
    ClassificationReport,
    _accuracy_at_coverage,
    _calibration_bins,
    _without_nan,
)
from digitrec.io.atomic import _umask, write_atomically
from digitrec.io.idx import _read_at_most, parse_idx, read_idx, read_idx_bytes
from digitrec.io.npz import read_npz_split
from digitrec.io.tensorfile import (
    MAX_HEADER_DEPTH,
    _nesting_depth,
    pack,
    read_file,
    tensors_to_bytes,
    unpack,
    versions,
)

from .conftest import write_idx

# --------------------------------------------------------------------------- _checks


def _message(function: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidInputError) as caught:
        function(*args, **kwargs)
    return str(caught.value)


def test_check_bool_returns_the_value_and_names_what_came() -> None:
    assert check_bool(True, "flag") is True
    assert check_bool(False, "flag") is False
    assert _message(check_bool, 1, "flag") == "flag must be True or False, got 1"
    assert _message(check_bool, None, "nesterov") == "nesterov must be True or False, got None"


@pytest.mark.parametrize(
    ("minimum", "wanted"),
    [
        (None, "an integer"),
        (0, "a non-negative integer"),
        (1, "a positive integer"),
        (5, "an integer >= 5"),
        (-3, "an integer >= -3"),
    ],
)
def test_check_int_says_what_was_wanted(minimum: int | None, wanted: str) -> None:
    assert _message(check_int, 2.5, "n", minimum=minimum) == f"n must be {wanted}, got 2.5"


def test_check_int_boundary_is_inclusive_and_bools_are_refused() -> None:
    assert check_int(5, "n", minimum=5) == 5
    assert check_int(-7, "n") == -7
    assert check_int(0, "n", minimum=0) == 0
    assert _message(check_int, 4, "n", minimum=5) == "n must be an integer >= 5, got 4"
    assert _message(check_int, -1, "seed", minimum=0) == (
        "seed must be a non-negative integer, got -1"
    )
    assert _message(check_int, True, "n") == "n must be an integer, got True"
    assert _message(check_int, False, "n", minimum=0) == (
        "n must be a non-negative integer, got False"
    )
    assert _message(check_int, "3", "n") == "n must be an integer, got '3'"


def test_check_positive_int_refuses_zero_and_accepts_one() -> None:
    assert check_positive_int(1, "epochs") == 1
    assert _message(check_positive_int, 0, "epochs") == ("epochs must be a positive integer, got 0")


def test_check_number_returns_a_float_inside_closed_bounds() -> None:
    value = check_number(1, "x", low=1.0, high=2.0)
    assert value == 1.0
    assert type(value) is float
    assert check_number(2.0, "x", low=1.0, high=2.0) == 2.0
    assert check_number(-1e300, "x") == -1e300
    assert check_number(0.5, "x", low=0.0, high=1.0, low_open=True, high_open=True) == 0.5


@pytest.mark.parametrize(
    ("value", "kwargs", "interval"),
    [
        (0.0, {"low": 0.0, "low_open": True}, " > 0"),
        (-0.5, {"low": 0.0}, " >= 0"),
        (1.0, {"high": 1.0, "high_open": True}, " < 1"),
        (1.5, {"high": 1.0}, " <= 1"),
        (1.0, {"low": 0.0, "high": 1.0, "high_open": True}, " in [0, 1)"),
        (0.0, {"low": 0.0, "high": 1.0, "low_open": True}, " in (0, 1]"),
        (2.0, {"low": 0.0, "high": 1.0}, " in [0, 1]"),
        (-1.0, {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, " in (0, 1)"),
        (2.5, {"low": 0.25, "high": 1.5}, " in [0.25, 1.5]"),
        (math.nan, {}, ""),
        (math.inf, {}, ""),
        (True, {}, ""),
        ("1", {}, ""),
        (None, {}, ""),
        ("abc", {"low": 0.0}, " >= 0"),
    ],
)
def test_check_number_message_names_the_interval(
    value: object, kwargs: dict[str, object], interval: str
) -> None:
    expected = f"x must be a finite number{interval}, got {value!r}"
    assert _message(check_number, value, "x", **kwargs) == expected


def test_check_number_open_and_closed_bounds_differ_exactly_at_the_bound() -> None:
    assert check_number(0.0, "x", low=0.0) == 0.0
    assert check_number(1.0, "x", high=1.0) == 1.0
    with pytest.raises(InvalidInputError, match=re.escape("x must be a finite number > 0")):
        check_number(0.0, "x", low=0.0, low_open=True)
    with pytest.raises(InvalidInputError, match=re.escape("x must be a finite number < 1")):
        check_number(1.0, "x", high=1.0, high_open=True)
    # Just inside an open bound is accepted.
    assert check_number(1e-12, "x", low=0.0, low_open=True) == 1e-12
    assert check_number(1 - 1e-12, "x", high=1.0, high_open=True) == 1 - 1e-12


def test_check_choice_returns_the_value_and_lists_the_choices() -> None:
    assert check_choice("pad", "resize", ("pad", "stretch")) == "pad"
    assert _message(check_choice, "crop", "resize", ["pad", "stretch"]) == (
        "resize must be one of ('pad', 'stretch'), got 'crop'"
    )


# --------------------------------------------------------------------------- io.idx


def _idx(*, code: int = 0x08, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def _idx_error(path: Path) -> str:
    with pytest.raises(DataFileError) as caught:
        read_idx(path)
    return str(caught.value)


def test_idx_round_trip_of_every_type_is_native_writable_and_copied(tmp_path: Path) -> None:
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        array = (np.arange(6).reshape(1, 2, 3) - 2).astype(dtype)
        array[0, 0, 0] = 7
        path = write_idx(tmp_path / f"{np.dtype(dtype).name}.idx", array)
        read = read_idx(path)
        assert read.dtype == np.dtype(dtype)
        assert read.dtype.isnative
        assert read.shape == (1, 2, 3)  # a dimension of 1 is allowed
        np.testing.assert_array_equal(read, array)
        assert read.flags.writeable
        assert read.flags.owndata
        read[0, 0, 0] = 1  # a copy: writing to it is allowed


def test_idx_gzipped_file_larger_than_a_chunk_is_read_whole(tmp_path: Path) -> None:
    array = (np.arange(3 * 600 * 700) % 251).astype(np.uint8).reshape(3, 600, 700)
    path = write_idx(tmp_path / "big.idx.gz", array, compress=True)
    np.testing.assert_array_equal(read_idx(path), array)


def test_idx_header_messages_are_exact(tmp_path: Path) -> None:
    empty = tmp_path / "empty.idx"
    empty.write_bytes(b"")
    assert _idx_error(empty) == (
        f"{str(empty)!r} is not an IDX file: expected a magic number 00 00 <type> <ndim> "
        "with type in [8, 9, 11, 12, 13, 14], got an empty file"
    )
    bad = tmp_path / "bad.idx"
    bad.write_bytes(bytes([0, 0, 0x0A, 1]) + b"rest")
    assert _idx_error(bad).endswith("got 00 00 0a 01")
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8]))
    assert _idx_error(short).endswith("got 00 00 08")
    one = tmp_path / "one.idx"
    one.write_bytes(bytes([1, 0, 8, 1]))
    assert "is not an IDX file" in _idx_error(one)
    two = tmp_path / "two.idx"
    two.write_bytes(bytes([0, 1, 8, 1]))
    assert "is not an IDX file" in _idx_error(two)


def test_idx_dimension_messages_are_exact(tmp_path: Path) -> None:
    none = tmp_path / "ndim0.idx"
    none.write_bytes(bytes([0, 0, 8, 0]) + b"\x00" * 8)
    assert _idx_error(none) == (
        f"{str(none)!r} is a truncated IDX file: the header announces 0 dimensions but 0 follow"
    )
    cut = tmp_path / "cut.idx"
    cut.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">2I", 2, 2) + b"\x00\x00")
    assert _idx_error(cut) == (
        f"{str(cut)!r} is a truncated IDX file: the header announces 3 dimensions but 2 follow"
    )
    zero = tmp_path / "zero.idx"
    zero.write_bytes(_idx(dims=(2, 0, 3), payload=b""))
    assert _idx_error(zero) == (
        f"{str(zero)!r} announces shape (2, 0, 3): every dimension of an IDX file must be "
        "at least 1"
    )


def test_idx_size_messages_are_exact(tmp_path: Path) -> None:
    claim = tmp_path / "claim.idx"
    claim.write_bytes(_idx(code=0x0B, dims=(2, 3), payload=bytes(5)))
    assert _idx_error(claim) == (
        f"{str(claim)!r}: the header announces shape (2, 3) (12 bytes of data) but the file "
        "holds at most 5; it is truncated or corrupt"
    )
    bare = tmp_path / "bare.idx"
    bare.write_bytes(_idx(dims=(1,), payload=b""))
    assert _idx_error(bare).endswith(
        "(1 bytes of data) but the file holds at most 0; it is truncated or corrupt"
    )
    # Exactly the announced size is fine; one byte more is trailing data.
    exact = tmp_path / "exact.idx"
    exact.write_bytes(_idx(dims=(2, 2), payload=bytes(4)))
    assert read_idx(exact).shape == (2, 2)
    more = tmp_path / "more.idx"
    more.write_bytes(_idx(dims=(2, 2), payload=bytes(5)))
    assert _idx_error(more) == (
        f"{str(more)!r} has trailing bytes: the header announces 4 bytes of data, more follow"
    )
    packed = tmp_path / "packed.idx.gz"
    packed.write_bytes(gzip.compress(_idx(dims=(1000, 1000), payload=bytes(999_999))))
    assert _idx_error(packed) == (
        f"{str(packed)!r} is truncated: the header announces 1,000,000 bytes of data, 999999 follow"
    )
    bomb = tmp_path / "bomb.idx.gz"
    bomb.write_bytes(gzip.compress(_idx(dims=(4000, 4000, 100), payload=b"")))
    size = bomb.stat().st_size
    assert _idx_error(bomb).endswith(
        f"(1,600,000,000 bytes of data) but the file holds at most {size * 1100:,}; "
        "it is truncated or corrupt"
    )


def test_idx_gzip_garbage_is_a_data_file_error_with_the_cause(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.idx.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"\xff" * 40)
    with pytest.raises(DataFileError, match="is not a readable IDX file: ") as caught:
        read_idx(garbage)
    assert isinstance(caught.value.__cause__, (OSError, EOFError, zlib.error))
    missing = tmp_path / "missing.idx"
    with pytest.raises(DataNotFoundError) as not_found:
        read_idx(missing)
    assert str(not_found.value) == f"no IDX file at {str(missing)!r}"
    with pytest.raises(DataNotFoundError):
        read_idx(tmp_path)  # a folder is not a file


def test_idx_reads_at_most_the_limit_in_chunks() -> None:
    class Stream:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def read(self, size: int) -> bytes:
            self.asked.append(size)
            return b"x" * size

    stream = Stream()
    assert _read_at_most(stream, (1 << 20) + 3) == b"x" * ((1 << 20) + 3)
    assert stream.asked == [1 << 20, 3]
    assert _read_at_most(io.BytesIO(b"abc"), 10) == b"abc"
    assert _read_at_most(io.BytesIO(b"abcdef"), 4) == b"abcd"


def test_idx_bytes_are_header_dims_and_payload(tmp_path: Path) -> None:
    data = _idx(code=0x0C, dims=(2,), payload=struct.pack(">2i", -5, 70000))
    path = tmp_path / "ints.idx"
    path.write_bytes(data)
    assert read_idx_bytes(path) == data
    np.testing.assert_array_equal(parse_idx(data), np.array([-5, 70000], dtype=np.int32))


# --------------------------------------------------------------------------- io.npz


def test_npz_messages_are_exact(tmp_path: Path) -> None:
    missing = tmp_path / "none.npz"
    with pytest.raises(DataNotFoundError) as not_found:
        read_npz_split(missing, "train")
    assert str(not_found.value) == f"no .npz file at {str(missing)!r}"
    single = tmp_path / "single.npz"
    with single.open("wb") as stream:
        np.save(stream, np.zeros(3))
    with pytest.raises(DataFileError) as caught:
        read_npz_split(single, "val")
    assert str(caught.value) == (
        f"{str(single)!r} holds a single numpy array, not an .npz archive with "
        "'val_images' and 'val_labels'"
    )
    partial = tmp_path / "partial.npz"
    np.savez(partial, test_labels=np.zeros(2), b=np.zeros(1), a=np.zeros(1))
    with pytest.raises(DataFileError) as caught:
        read_npz_split(partial, "test")
    assert str(caught.value) == (
        f"{str(partial)!r} has no ['test_images'] for split 'test'; "
        "it holds ['a', 'b', 'test_labels']"
    )
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataFileError) as caught:
        read_npz_split(broken, "train")
    assert str(caught.value).startswith(f"{str(broken)!r} is not a readable .npz of arrays: ")
    assert caught.value.__cause__ is not None


def test_npz_returns_images_then_labels_of_the_split(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    images, labels = np.arange(8, dtype=np.uint8).reshape(2, 2, 2), np.array([[1], [0]])
    np.savez(path, val_images=images, val_labels=labels, train_images=images[:1])
    got_images, got_labels = read_npz_split(path, "val")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


# --------------------------------------------------------------------------- io.tensorfile


def _nested(depth: int) -> object:
    value: object = 0
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_nesting_depth_counts_lists_and_dicts() -> None:
    assert _nesting_depth(3) == 0
    assert _nesting_depth({}) == 1
    assert _nesting_depth({"a": [1, {"b": 2}], "c": []}) == 3
    assert _nesting_depth(_nested(MAX_HEADER_DEPTH)) == MAX_HEADER_DEPTH
    assert _nesting_depth(_nested(MAX_HEADER_DEPTH + 1)) == MAX_HEADER_DEPTH + 1
    assert _nesting_depth(_nested(10_000)) == MAX_HEADER_DEPTH + 1  # stops early


def _write(path: Path, header: object, *, key: str = "digitrec") -> Path:
    import safetensors.torch

    raw = safetensors.torch.save({"w": torch.ones(2)}, metadata={key: json.dumps(header)})
    path.write_bytes(raw)
    return path


def test_header_depth_limit_is_inclusive(tmp_path: Path) -> None:
    deepest = {"deep": _nested(MAX_HEADER_DEPTH - 1)}
    tensors, header = read_file(_write(tmp_path / "ok.safetensors", deepest), "model file")
    assert header == deepest
    assert torch.equal(tensors["w"], torch.ones(2))
    too_deep = _write(tmp_path / "deep.safetensors", {"deep": _nested(MAX_HEADER_DEPTH)})
    with pytest.raises(CheckpointError) as caught:
        read_file(too_deep, "model file")
    assert str(caught.value) == (
        f"{str(too_deep)!r} has a digitrec header nested more than 64 levels deep; "
        "digitrec never writes one, so the file is corrupt or hostile"
    )


def test_read_file_messages_are_exact(tmp_path: Path) -> None:
    missing = tmp_path / "none.safetensors"
    with pytest.raises(DataNotFoundError) as not_found:
        read_file(missing, "checkpoint")
    assert str(not_found.value) == f"no checkpoint at {str(missing)!r}"
    other = _write(tmp_path / "other.safetensors", {}, key="zeta")
    with pytest.raises(CheckpointError) as caught:
        read_file(other, "checkpoint")
    assert str(caught.value) == (
        f"{str(other)!r} is a safetensors file but not a digitrec checkpoint: its header has "
        "no 'digitrec' entry (keys: ['zeta'])"
    )
    listed = _write(tmp_path / "list.safetensors", [1, 2])
    with pytest.raises(CheckpointError) as caught:
        read_file(listed, "checkpoint")
    assert str(caught.value) == f"{str(listed)!r} has a digitrec header that is not a JSON object"
    pickle = tmp_path / "pickle.safetensors"
    pickle.write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(CheckpointError) as caught:
        read_file(pickle, "checkpoint")
    assert str(caught.value).startswith(
        f"{str(pickle)!r} is not a safetensors file (a pickle, a truncated or corrupt file?): "
    )
    import safetensors.torch

    unreadable = tmp_path / "unreadable.safetensors"
    unreadable.write_bytes(safetensors.torch.save({"w": torch.ones(1)}, metadata={"digitrec": "{"}))
    with pytest.raises(CheckpointError) as caught:
        read_file(unreadable, "checkpoint")
    assert str(caught.value).startswith(
        f"{str(unreadable)!r} has an unreadable digitrec header: JSONDecodeError: "
    )


def test_read_file_without_metadata_lists_no_keys(tmp_path: Path) -> None:
    import safetensors.torch

    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(safetensors.torch.save({"w": torch.ones(1)}))
    with pytest.raises(CheckpointError, match=re.escape("(keys: [])")):
        read_file(bare, "model file")


def test_tensors_to_bytes_round_trips_copies_and_header(tmp_path: Path) -> None:
    weight = torch.arange(6.0).reshape(2, 3).t()  # not contiguous
    weight.requires_grad_(True)
    path = tmp_path / "file.safetensors"
    path.write_bytes(tensors_to_bytes({"weight": weight}, {"epoch": 3, "names": ["a"]}))
    tensors, header = read_file(path, "model file")
    assert header == {"epoch": 3, "names": ["a"]}
    assert torch.equal(tensors["weight"], weight.detach())
    assert set(versions()) == {"digitrec", "torch", "python"}
    assert versions()["digitrec"] == digitrec.__version__
    assert versions()["torch"] == torch.__version__


def test_pack_names_tensors_by_their_path_and_unpack_rebuilds() -> None:
    state = {"step": 4, 0: {"exp_avg": torch.ones(2)}, "groups": [torch.zeros(1), (1.5, None)]}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, tensors, "optimizer")
    assert sorted(tensors) == ["optimizer.0.exp_avg", "optimizer.groups.0"]
    assert skeleton == {
        "dict": [
            ["step", {"value": 4}],
            [0, {"dict": [["exp_avg", {"tensor": "optimizer.0.exp_avg"}]]}],
            [
                "groups",
                {
                    "list": [
                        {"tensor": "optimizer.groups.0"},
                        {"list": [{"value": 1.5}, {"value": None}]},
                    ]
                },
            ],
        ]
    }
    rebuilt = unpack(json.loads(json.dumps(skeleton)), tensors)
    assert rebuilt["step"] == 4
    assert rebuilt[0]["exp_avg"] is tensors["optimizer.0.exp_avg"]
    assert rebuilt["groups"][1] == [1.5, None]
    assert 0 in rebuilt  # integer keys stay integers


# --------------------------------------------------------------------------- io.atomic


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_write_gets_the_mode_open_would_give(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        assert _umask() == mask
        path = tmp_path / "sub" / "dir" / "file.bin"
        write_atomically(path, b"payload")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"payload"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_umask_falls_back_when_proc_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "Name: x\nUmask:\tnope\n")
        assert _umask() == 0o027
        monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "Name: x\n")
        assert _umask() == 0o027
        assert os.umask(0o027) == 0o027  # the fallback put the mask back
    finally:
        os.umask(old)


def test_atomic_write_replaces_and_cleans_up_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


# --------------------------------------------------------------------------- evaluation


def _report(**changes: object) -> ClassificationReport:
    fields: dict[str, object] = {
        "class_names": ("cat", "dog"),
        "support": torch.tensor([3, 1]),
        "accuracy": 0.75,
        "balanced_accuracy": 0.5,
        "confusion_matrix": torch.tensor([[3, 0], [1, 0]]),
        "precision": torch.tensor([0.75, 0.0], dtype=torch.float64),
        "sensitivity": torch.tensor([1.0, 0.0], dtype=torch.float64),
        "specificity": torch.tensor([0.0, 1.0], dtype=torch.float64),
        "f1": torch.tensor([6 / 7, 0.0], dtype=torch.float64),
        "auroc": math.nan,
        "ece": 0.125,
        "nll": 0.5,
        "brier": 0.1875,
        "temperature": 1.5,
        "accuracy_at_coverage": {1.0: 0.75, 0.9: 0.75, 0.8: 1.0},
        "calibration_bins": {
            "count": torch.tensor([0, 4]),
            "confidence": torch.tensor([math.nan, 0.8], dtype=torch.float64),
        },
    }
    fields.update(changes)
    return ClassificationReport(**fields)  # type: ignore[arg-type]


def test_report_table_is_exact() -> None:
    assert str(_report()).splitlines() == [
        "class      support  precision  sensitivity  specificity      f1",
        "cat              3      0.750        1.000        0.000   0.857",
        "dog              1      0.000        0.000        1.000   0.000",
        "",
        "images: 4   accuracy: 75.00%   balanced accuracy: 50.00%   ROC AUC: nan",
        "ECE (15 bins): 0.1250   NLL: 0.5000   Brier: 0.1875   temperature: 1.500",
        "accuracy at coverage: 100%: 75.00%, 90%: 75.00%, 80%: 100.00%",
        "confusion matrix (rows actual, columns predicted):",
        "           cat dog",
        "cat          3   0",
        "dog          1   0",
    ]


def test_report_table_widens_for_long_names_and_large_counts() -> None:
    report = _report(
        class_names=("pneumothorax", "b"),
        support=torch.tensor([1234, 1]),
        confusion_matrix=torch.tensor([[1000, 234], [1, 0]]),
        auroc=0.98765,
    )
    lines = str(report).splitlines()
    assert lines[0] == "class         support  precision  sensitivity  specificity      f1"
    assert lines[1] == "pneumothorax     1234      0.750        1.000        0.000   0.857"
    assert lines[2] == "b                   1      0.000        0.000        1.000   0.000"
    assert lines[4].endswith("ROC AUC: 0.9877")
    assert lines[-3:] == [
        "              pneumothorax            b",
        "pneumothorax          1000          234",
        "b                        1            0",
    ]
    short = _report(
        class_names=("a", "b"),
        support=torch.tensor([100, 1]),
        confusion_matrix=torch.tensor([[100, 0], [1, 0]]),
    )
    assert str(short).splitlines()[-3:] == [
        "             a   b",
        "a          100   0",
        "b            1   0",
    ]
    empty = _report(
        class_names=("a", "b"), support=torch.tensor([0, 0]), confusion_matrix=torch.zeros(2, 2)
    )
    assert str(empty).splitlines()[-2:] == ["a          0 0", "b          0 0"]


def test_report_to_dict_is_plain_and_strict() -> None:
    assert _report().to_dict() == {
        "class_names": ["cat", "dog"],
        "support": [3, 1],
        "accuracy": 0.75,
        "balanced_accuracy": 0.5,
        "confusion_matrix": [[3, 0], [1, 0]],
        "precision": [0.75, 0.0],
        "sensitivity": [1.0, 0.0],
        "specificity": [0.0, 1.0],
        "f1": [6 / 7, 0.0],
        "auroc": None,
        "ece": 0.125,
        "nll": 0.5,
        "brier": 0.1875,
        "temperature": 1.5,
        "accuracy_at_coverage": {"1.0": 0.75, "0.9": 0.75, "0.8": 1.0},
        "calibration_bins": {"count": [0, 4], "confidence": [None, 0.8]},
        "ood_auroc": None,
        "ood_fpr_at_95_tpr": None,
    }
    assert _report().total == 4


def test_without_nan_walks_dicts_and_lists_only() -> None:
    assert _without_nan({"a": [1.0, math.nan, {"b": math.nan}], "c": "nan"}) == {
        "a": [1.0, None, {"b": None}],
        "c": "nan",
    }
    assert _without_nan(math.inf) == math.inf
    assert _without_nan((math.nan,))[0] is not None  # tuples are left alone


def test_accuracy_at_coverage_rounds_the_kept_count_up() -> None:
    confidence = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    correct = torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=torch.bool)
    assert _accuracy_at_coverage(confidence, correct) == {1.0: 0.8, 0.9: 8 / 9, 0.8: 1.0}
    # Three images: 90% and 80% of 3 both keep ceil(2.7) = ceil(2.4) = 3.
    three = _accuracy_at_coverage(torch.tensor([0.9, 0.5, 0.7]), torch.tensor([1, 0, 1]) > 0)
    assert three == {1.0: 2 / 3, 0.9: 2 / 3, 0.8: 2 / 3}
    # Ties keep the earlier image (a stable sort).
    tied = _accuracy_at_coverage(torch.full((5,), 0.5), torch.tensor([1, 1, 1, 1, 0]) > 0)
    assert tied == {1.0: 0.8, 0.9: 0.8, 0.8: 1.0}
    assert _accuracy_at_coverage(torch.tensor([0.3]), torch.tensor([True])) == {
        1.0: 1.0,
        0.9: 1.0,
        0.8: 1.0,
    }


def test_calibration_bins_are_right_closed_fifteenths() -> None:
    fifteenth = 1 / 15
    confidence = torch.tensor(
        [0.0, fifteenth, fifteenth + 1e-9, 0.5, 1.0, 1.0], dtype=torch.float64
    )
    correct = torch.tensor([False, True, True, False, True, False])
    bins = _calibration_bins(confidence, correct)
    expected_count = [0] * 15
    expected_count[0], expected_count[1], expected_count[7], expected_count[14] = 2, 1, 1, 2
    assert bins["count"].tolist() == expected_count
    assert bins["confidence"][0].item() == pytest.approx(fifteenth / 2)
    assert bins["confidence"][14].item() == 1.0
    assert bins["accuracy"][0].item() == 0.5
    assert bins["accuracy"][14].item() == 0.5
    assert bins["accuracy"][7].item() == 0.0
    assert bins["accuracy"][1].item() == 1.0
    assert bool(torch.isnan(bins["confidence"][2]))
    assert bool(torch.isnan(bins["accuracy"][13]))
    assert set(bins) == {"count", "confidence", "accuracy"}


@pytest.fixture(scope="module", name="small_model")
def small_model_fixture() -> digitrec.DigitClassifier:
    return digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=3, seed=1)


def _small_data(count: int, classes: int, seed: int, **kwargs: object) -> digitrec.ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 1, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, classes, (count,), generator=generator)
    return digitrec.ImageDataset(images, labels, **kwargs)  # type: ignore[arg-type]


def test_report_applies_the_temperature_and_counts_from_probabilities(
    small_model: digitrec.DigitClassifier,
) -> None:
    data = _small_data(60, 3, seed=2)
    small_model.temperature.fill_(0.5)
    try:
        report = digitrec.evaluate(small_model, data, batch_size=7)
        probs = digitrec.predict_proba(small_model, data).double()
    finally:
        small_model.temperature.fill_(1.0)
    assert report.temperature == 0.5
    labels = data.labels
    assert report.nll == pytest.approx(float(-probs[torch.arange(60), labels].log().mean()))
    one_hot = torch.nn.functional.one_hot(labels, 3).double()
    assert report.brier == pytest.approx(float(((probs - one_hot) ** 2).sum(1).mean() / 2))
    assert report.accuracy == pytest.approx(float((probs.argmax(1) == labels).double().mean()))
    assert report.support.tolist() == torch.bincount(labels, minlength=3).tolist()
    assert report.class_names == ("0", "1", "2")


def test_report_names_come_from_model_then_data_then_numbers(
    small_model: digitrec.DigitClassifier,
) -> None:
    named = _small_data(12, 3, seed=3, class_names=["x", "y", "z"])
    assert digitrec.evaluate(small_model, named).class_names == ("x", "y", "z")
    model = digitrec.DigitClassifier(
        "mlp", input_shape=(1, 8, 8), num_classes=3, class_names=["p", "q", "r"], seed=1
    )
    assert digitrec.evaluate(model, named).class_names == ("p", "q", "r")


def test_report_auroc_is_nan_with_one_class_and_macro_over_present_classes(
    small_model: digitrec.DigitClassifier,
) -> None:
    generator = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (20, 1, 8, 8), generator=generator, dtype=torch.uint8)
    only_ones = digitrec.ImageDataset(images, torch.ones(20, dtype=torch.long))
    report = digitrec.evaluate(small_model, only_ones)
    assert math.isnan(report.auroc)
    assert report.to_dict()["auroc"] is None
    assert report.support.tolist() == [0, 20, 0]
    # Two of three classes present: the mean of their one-vs-rest AUCs.
    labels = torch.tensor([0, 2] * 10)
    two = digitrec.ImageDataset(images, labels)
    report = digitrec.evaluate(small_model, two)
    probs = digitrec.predict_proba(small_model, two).double().numpy()
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    expected = np.mean([roc_auc_score(labels.numpy() == k, probs[:, k]) for k in (0, 2)])
    assert report.auroc == pytest.approx(expected, abs=1e-6)
    assert report.balanced_accuracy == pytest.approx(
        float(report.sensitivity[[0, 2]].mean()), abs=1e-12
    )


def test_evaluate_accuracy_counts_exactly(mnist_test: digitrec.ImageDataset) -> None:
    model = digitrec.DigitClassifier(seed=0)
    subset = mnist_test[:300]
    result = digitrec.evaluate_accuracy(model, subset, batch_size=64)
    predicted = digitrec.predict(model, subset.images)
    assert result == digitrec.AccuracyResult(
        total=300, correct=int((predicted == subset.labels).sum())
    )
    assert digitrec.AccuracyResult(total=4, correct=1).accuracy == 0.25
    assert str(digitrec.AccuracyResult(total=3, correct=2)).endswith("Model accuracy: 66.67%")


def test_calibrate_sets_the_buffer_and_leaves_predictions(
    small_model: digitrec.DigitClassifier,
) -> None:
    data = _small_data(90, 3, seed=5)
    before = digitrec.predict(small_model, data.images)
    try:
        temperature = digitrec.calibrate(small_model, data, batch_size=8)
        assert temperature > 0
        assert float(small_model.temperature) == temperature
        assert torch.equal(digitrec.predict(small_model, data.images), before)
        logits = torch.log(digitrec.predict_proba(small_model, data).double()) * temperature

        def nll(t: float) -> float:
            return float(torch.nn.functional.cross_entropy(logits / t, data.labels))

        for factor in (0.9, 1.1):
            assert nll(temperature) <= nll(temperature * factor)
        with pytest.raises(InvalidInputError, match="batch_size"):
            digitrec.calibrate(small_model, data, batch_size=0)
    finally:
        small_model.temperature.fill_(1.0)
