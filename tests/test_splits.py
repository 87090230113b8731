"""Splits that do not leak: stratified, by group, k folds; groups on the data set."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import digitrec
from digitrec.data import group_split, kfold, stratified_split

PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)


def make(
    labels: list[int] | np.ndarray, groups: Sequence[object] | None = None
) -> digitrec.ImageDataset:
    labels = np.asarray(labels)
    # Each image's first pixel is its index, so parts can be traced back to the original.
    images = np.zeros((len(labels), 8, 8), np.uint8)
    images[:, 0, 0] = np.arange(len(labels)) % 256
    images[:, 0, 1] = np.arange(len(labels)) // 256
    return digitrec.ImageDataset.from_arrays(images, labels, groups=groups)


def group_names(data: digitrec.ImageDataset) -> list[str]:
    assert data.groups is not None
    names: list[str] = data.groups.tolist()
    return names


def ids(data: digitrec.ImageDataset) -> list[int]:
    return (data.images[:, 0, 0, 0].long() + 256 * data.images[:, 0, 0, 1].long()).tolist()


def test_groups_travel_through_indexing_and_split() -> None:
    data = make([0, 1, 0, 1, 1], groups=["a", "b", "b", "c", "d"])
    assert data.groups is not None
    assert group_names(data[[4, 0]]) == ["d", "a"]
    assert group_names(data[torch.tensor([True, False, False, False, True])]) == ["a", "d"]
    assert group_names(data[1:3]) == ["b", "b"]
    train, val = data.split(2, seed=1)
    assert sorted(group_names(train) + group_names(val)) == ["a", "b", "b", "c", "d"]
    assert data.with_groups(None).groups is None
    assert "groups=4" in repr(data)
    with pytest.raises(ValueError, match="read-only"):
        data.groups[0] = "z"


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        (["a", "b"], digitrec.InvalidInputError, r"shape \(3,\)"),
        ([0.5, 1.5, 2.5], digitrec.InvalidTypeError, "strings or integers"),
        ("abc", digitrec.InvalidTypeError, "sequence or array"),
    ],
)
def test_bad_groups_are_refused(groups: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make([0, 1, 0], groups=groups)  # type: ignore[arg-type]


def test_from_csv_reads_the_group_column(tmp_path: Path) -> None:
    rows = ["file,label,patient,fold"]
    for index in range(6):
        np.save(tmp_path / f"{index}.npy", np.full((8, 8), index, np.uint8))
        rows.append(f"{index}.npy,{index % 2},p{index // 2},{'test' if index == 5 else 'train'}")
    (tmp_path / "missing.npy").write_bytes(b"not an image")
    rows.append("missing.npy,0,p9,train")
    (tmp_path / "list.csv").write_text("\n".join(rows))
    with pytest.warns(UserWarning, match="skipped 1"):
        train = digitrec.ImageDataset.from_csv(
            tmp_path / "list.csv",
            group_column="patient",
            split_column="fold",
            split="train",
            on_error="skip",
        )
    assert train.groups is not None
    assert train.groups.tolist() == ["p0", "p0", "p1", "p1", "p2"]
    assert train.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(digitrec.DataFileError, match="'site'"):
        digitrec.ImageDataset.from_csv(tmp_path / "list.csv", group_column="site")


def test_stratified_split_keeps_each_class_share() -> None:
    data = make([0] * 700 + [1] * 200 + [2] * 100)
    train, val = stratified_split(data, 0.1, seed=3)
    assert (len(train), len(val)) == (900, 100)
    assert Counter(val.labels.tolist()) == {0: 70, 1: 20, 2: 10}
    assert sorted(ids(train) + ids(val)) == list(range(1000))
    again = stratified_split(data, 0.1, seed=3)[1]
    assert ids(again) == ids(val)
    assert ids(stratified_split(data, 0.1, seed=4)[1]) != ids(val)
    assert len(stratified_split(data, 37, seed=0)[1]) == 37


@pytest.mark.parametrize("val_size", [0.0, 1.0, 0, 1000, 1e-6])
def test_split_sizes_that_leave_a_part_empty_are_refused(val_size: float) -> None:
    with pytest.raises(digitrec.InvalidInputError, match="both parts non-empty"):
        stratified_split(make([0, 1] * 500), val_size)


def test_group_split_needs_groups() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="no groups"):
        group_split(make([0, 1, 0, 1]))
    with pytest.raises(digitrec.InvalidInputError, match="at least 2 groups"):
        group_split(make([0, 1], groups=["a", "a"]))


@settings(max_examples=60, deadline=None)
@given(
    assignment=st.lists(st.integers(0, 12), min_size=4, max_size=120),
    labels_seed=st.integers(0, 2**16),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**16),
    stratify=st.booleans(),
)
def test_group_split_never_puts_a_group_on_both_sides(
    assignment: list[int], labels_seed: int, fraction: float, seed: int, stratify: bool
) -> None:
    groups = [f"patient-{g}" for g in assignment]
    if len(set(groups)) < 2 or round(fraction * len(groups)) in (0, len(groups)):
        return
    labels = np.random.default_rng(labels_seed).integers(0, 3, len(groups))
    train, val = group_split(make(labels), groups, fraction, seed=seed, stratify=stratify)
    assert train.groups is not None
    assert val.groups is not None
    assert not set(train.groups.tolist()) & set(val.groups.tolist())
    assert len(train)
    assert len(val)
    assert sorted(ids(train) + ids(val)) == list(range(len(groups)))


@settings(max_examples=40, deadline=None)
@given(
    assignment=st.lists(st.integers(0, 30), min_size=10, max_size=150),
    k=st.integers(2, 6),
    seed=st.integers(0, 2**16),
    stratify=st.booleans(),
)
def test_group_kfold_validates_every_image_once_and_never_leaks(
    assignment: list[int], k: int, seed: int, stratify: bool
) -> None:
    if len(set(assignment)) < k:
        return
    labels = np.random.default_rng(seed).integers(0, 2, len(assignment))
    data = make(labels, groups=assignment)
    seen: list[int] = []
    for train, val in kfold(data, k, stratify=stratify, seed=seed):
        assert train.groups is not None
        assert val.groups is not None
        assert not set(train.groups.tolist()) & set(val.groups.tolist())
        assert sorted(ids(train) + ids(val)) == list(range(len(data)))
        seen += ids(val)
    assert sorted(seen) == list(range(len(data)))


def test_group_split_is_near_the_size_asked_for_and_stratifies() -> None:
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(400), 3)
    labels = np.repeat(rng.integers(0, 2, 400) * (rng.random(400) < 0.8), 3)
    data = make(labels, groups=patients.tolist())
    _, val = group_split(data, val_size=0.2, seed=0, stratify=True)
    assert abs(len(val) - 240) <= 3
    share = float(data.labels.double().mean())
    assert abs(float(val.labels.double().mean()) - share) < 0.02
    assert len(group_split(data, val_size=10, seed=0)[1]) == 30  # a count is of groups


def test_stratified_kfold_without_groups_balances_classes() -> None:
    data = make([0] * 50 + [1] * 25)
    folds = list(kfold(data, 5, seed=1))
    assert [Counter(val.labels.tolist()) for _, val in folds] == [{0: 10, 1: 5}] * 5
    assert sorted(i for _, val in folds for i in ids(val)) == list(range(75))
    unstratified = [len(val) for _, val in kfold(data, 4, stratify=False, seed=1)]
    assert sorted(unstratified) == [18, 19, 19, 19]


def test_kfold_refuses_too_many_folds() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="at most 3"):
        list(kfold(make([0, 1, 0]), 4))
    with pytest.raises(digitrec.InvalidInputError, match=r"at most 2 \(the groups"):
        list(kfold(make([0, 1, 0, 1], groups=[1, 1, 2, 2]), 3))
    with pytest.raises(digitrec.InvalidInputError, match="k must be"):
        list(kfold(make([0, 1, 0]), 1))


@pytest.mark.skipif(not PNEUMONIA.exists(), reason="PneumoniaMNIST is not beside the checkout")
def test_pneumonia_stratified_split_keeps_its_imbalance() -> None:
    train = digitrec.ImageDataset.from_npz(PNEUMONIA, "train")
    part, val = stratified_split(train, 0.2, seed=0)
    share = float(train.labels.double().mean())
    assert abs(float(val.labels.double().mean()) - share) < 0.002
    assert len(part) + len(val) == len(train)
