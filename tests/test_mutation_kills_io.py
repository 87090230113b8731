"""Tests that kill ``io`` mutants which survived the rest of the suite (see docs/quality.rst).

The first mutation run of ``io/idx.py``, ``io/npz.py``, ``io/atomic.py`` and
``io/tensorfile.py`` with ``tests/test_mutation_kills.py`` in the selection left
these behaviours unpinned; each test here pins one of them.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from digitrec.errors import DataFileError
from digitrec.io import atomic
from digitrec.io.idx import read_idx
from digitrec.io.npz import read_npz_split
from digitrec.io.tensorfile import pack, unpack

# --------------------------------------------------------------------------- io.idx


def _idx_error(path: Path) -> str:
    with pytest.raises(DataFileError) as caught:
        read_idx(path)
    return str(caught.value)


def test_idx_huge_claimed_size_is_computed_exactly(tmp_path: Path) -> None:
    # Three dimensions of 2**32 - 1: the claimed size overflows int64 and is not a
    # float; the message states it exactly, as Python integers compute it.
    huge = tmp_path / "huge.idx"
    huge.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", *[2**32 - 1] * 3) + bytes(7))
    claimed = (2**32 - 1) ** 3
    assert _idx_error(huge) == (
        f"{str(huge)!r}: the header announces shape (4294967295, 4294967295, 4294967295) "
        f"({claimed:,} bytes of data) but the file holds at most 7; it is truncated or corrupt"
    )


def test_idx_truncated_dimensions_count_whole_dimensions(tmp_path: Path) -> None:
    # Four bytes of three announced dimensions: one whole dimension follows.
    cut = tmp_path / "cut.idx"
    cut.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 7))
    assert _idx_error(cut) == (
        f"{str(cut)!r} is a truncated IDX file: the header announces 3 dimensions but 1 follow"
    )


def test_idx_unreadable_gzip_message_names_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.idx.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"\xff" * 40)
    assert _idx_error(garbage).startswith(f"{str(garbage)!r} is not a readable IDX file: ")


# --------------------------------------------------------------------------- io.atomic


def test_atomic_temporary_file_is_hidden_beside_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rename is only atomic within one directory (one file system), and a
    # crash must leave a recognisable dot file next to the target, not a stray
    # file in /tmp.
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source: str, target: str | os.PathLike[str]) -> None:
        renamed.append((os.fspath(source), os.fspath(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "model.safetensors"
    atomic.write_atomically(path, b"weights")
    assert path.read_bytes() == b"weights"
    [(source, target)] = renamed
    assert Path(target) == path
    temporary = Path(source)
    assert temporary.parent == tmp_path
    assert temporary.name.startswith(".model.safetensors.")
    assert temporary.name.endswith(".tmp")
    assert not temporary.exists()


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_umask_is_read_from_proc_without_setting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Setting the umask to read it is briefly visible to other threads: where /proc
    # shows it, it is only read.
    old = os.umask(0o037)
    try:
        calls: list[int] = []

        def recording_umask(mask: int) -> int:
            calls.append(mask)
            return 0o037

        monkeypatch.setattr(os, "umask", recording_umask)
        assert atomic._umask() == 0o037
        assert calls == []
    finally:
        monkeypatch.undo()
        os.umask(old)


def test_atomic_write_syncs_the_file_then_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rename is durable only once the directory holding it is synced too.
    synced: list[tuple[bool, bool]] = []
    real_fsync = os.fsync

    def spy(descriptor: int) -> None:
        mode = os.fstat(descriptor).st_mode
        synced.append((stat.S_ISDIR(mode), (tmp_path / "file.bin").exists()))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    atomic.write_atomically(tmp_path / "file.bin", b"data")
    # First the file's data (before the rename), then the directory (after it).
    assert synced == [(False, False), (True, True)]


# --------------------------------------------------------------------------- io.npz


def test_npz_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = {"a": 1}, [2]
    np.savez(path, train_images=objects, train_labels=np.zeros(2, dtype=np.uint8))
    with pytest.raises(DataFileError) as caught:
        read_npz_split(path, "train")
    assert str(caught.value) == (
        f"{str(path)!r} is not a readable .npz of arrays: ValueError: "
        "Object arrays cannot be loaded when allow_pickle=False"
    )
    assert isinstance(caught.value.__cause__, ValueError)


# --------------------------------------------------------------------------- io.tensorfile


def test_pack_moves_the_tensors_themselves_into_the_table() -> None:
    weight, bias = torch.ones(2, 3), torch.zeros(3)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack({"layer": [weight, bias]}, tensors, "model")
    assert list(tensors) == ["model.layer.0", "model.layer.1"]
    assert tensors["model.layer.0"] is weight
    assert tensors["model.layer.1"] is bias
    rebuilt = unpack(skeleton, tensors)
    assert rebuilt["layer"][0] is weight
    assert rebuilt["layer"][1] is bias
