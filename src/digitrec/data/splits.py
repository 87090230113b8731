"""Splits that do not leak: stratified, by patient or study, and k folds.

Images of one patient are alike; a patient on both sides of a split makes the
validation figures optimistic. :func:`group_split` and :func:`kfold` keep each
group (the data set's :attr:`~digitrec.data.ImageDataset.groups`, or the
``groups`` passed) on one side; :func:`stratified_split` and ``stratify=True``
keep each class's share of images alike on both sides. Every split is seeded:
the same seed gives the same split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .._checks import check_bool, check_int
from ..errors import InvalidInputError, InvalidTypeError
from ._groups import groups_array
from .dataset import ImageDataset

__all__ = ["group_split", "kfold", "stratified_split"]


def _check_dataset(dataset: object) -> ImageDataset:
    if not isinstance(dataset, ImageDataset):
        raise InvalidTypeError(
            f"dataset must be a digitrec.ImageDataset, got {type(dataset).__name__}"
        )
    return dataset


def _val_count(val_size: object, total: int, unit: str = "images") -> int:
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
        raise InvalidTypeError(f"val_size must be an int or float, got {type(val_size).__name__}")
    count = round(val_size * total) if isinstance(val_size, float) else val_size
    if (isinstance(val_size, float) and not 0.0 < val_size < 1.0) or not 1 <= count < total:
        raise InvalidInputError(
            f"val_size must leave both parts non-empty: a fraction in (0, 1) or a count in "
            f"[1, {total - 1}] for {total} {unit}, got {val_size!r}"
        )
    return int(count)


def _strata(dataset: ImageDataset) -> np.ndarray[Any, Any]:
    """One stratum per image: its label (or, for several labels per image, its label row)."""
    labels = dataset.labels.numpy()
    if labels.ndim == 1:
        return labels
    _, inverse = np.unique(labels, axis=0, return_inverse=True)
    return np.asarray(inverse).reshape(-1)


def _resolve_groups(dataset: ImageDataset, groups: Any) -> np.ndarray[Any, Any]:
    if groups is None:
        if dataset.groups is None:
            raise InvalidInputError(
                "no groups: pass groups=<one identifier per image>, or give the data set "
                "groups (ImageDataset.with_groups, from_csv(..., group_column=...))"
            )
        return dataset.groups
    return groups_array(groups, len(dataset))


def _parts(
    dataset: ImageDataset, in_val: np.ndarray[Any, Any]
) -> tuple[ImageDataset, ImageDataset]:
    return (
        dataset[torch.from_numpy(np.flatnonzero(~in_val))],
        dataset[torch.from_numpy(np.flatnonzero(in_val))],
    )


def _allocate(total: int, shares: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Split ``total`` into integer parts proportional to ``shares`` (largest remainder)."""
    exact = total * shares / shares.sum()
    counts: np.ndarray[Any, Any] = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def stratified_split(
    dataset: ImageDataset, val_size: float | int = 0.1, *, seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """Split off a validation part that keeps each class's share of the images.

    Each class contributes its share of ``val_size`` (rounded so the counts add
    up), drawn at random; a rare class is not left out of validation by chance.

    Args:
        dataset: The data set to split.
        val_size: The validation part's size, as a fraction in ``(0, 1)`` or a
            count in ``[1, len(dataset) - 1]``.
        seed: Seed of the draw; the same seed gives the same split.

    Returns:
        ``(train, val)``, disjoint and together holding every image once, in
        their original order.

    Raises:
        InvalidTypeError: If ``dataset`` is not an :class:`ImageDataset`.
        InvalidInputError: If ``val_size`` leaves either part empty.

    Example:
        >>> labels = np.array([0] * 90 + [1] * 10)
        >>> data = digitrec.ImageDataset.from_arrays(np.zeros((100, 8, 8), np.uint8), labels)
        >>> train, val = digitrec.data.stratified_split(data, 0.2, seed=0)
        >>> len(train), len(val), val.labels.tolist().count(1)
        (80, 20, 2)
    """
    dataset = _check_dataset(dataset)
    count = _val_count(val_size, len(dataset))
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    strata = _strata(dataset)
    classes, sizes = np.unique(strata, return_counts=True)
    in_val = np.zeros(len(dataset), dtype=bool)
    for stratum, take in zip(classes, _allocate(count, sizes.astype(np.float64)), strict=True):
        members = np.flatnonzero(strata == stratum)
        in_val[rng.permutation(members)[:take]] = True
    return _parts(dataset, in_val)


def _closest_prefix(sizes: np.ndarray[Any, Any], target: float) -> int:
    """The number of leading groups whose images come closest to ``target`` (at least 1)."""
    totals = np.cumsum(sizes)
    return int(np.argmin(np.abs(totals - target))) + 1


def group_split(
    dataset: ImageDataset,
    groups: Any = None,
    val_size: float | int = 0.1,
    *,
    seed: int = 0,
    stratify: bool = False,
) -> tuple[ImageDataset, ImageDataset]:
    """Split off a validation part by patient or study: no group on both sides.

    Whole groups are drawn at random until the validation part holds about
    ``val_size`` of the images (groups are indivisible, so the size is as close
    as they allow). With ``stratify=True`` each group counts for its most common
    label and the draw is made per label, so each class keeps roughly its share.

    Args:
        dataset: The data set to split.
        groups: One identifier per image (strings or integers); ``None`` takes
            the data set's :attr:`~ImageDataset.groups`.
        val_size: The validation part's share of the images as a fraction in
            ``(0, 1)``, or its number of groups as a count.
        seed: Seed of the draw; the same seed gives the same split.
        stratify: Draw the groups of each label separately.

    Returns:
        ``(train, val)``, with no group in both, in their original order; both
        carry the groups.

    Raises:
        InvalidTypeError: If ``dataset`` is not an :class:`ImageDataset`, or
            ``groups`` are not strings or integers.
        InvalidInputError: If there are no groups, fewer than two, or
            ``val_size`` leaves either part empty.

    Example:
        >>> data = digitrec.ImageDataset.from_arrays(
        ...     np.zeros((6, 8, 8), np.uint8), np.array([0, 0, 1, 1, 0, 1]))
        >>> patients = ["a", "a", "b", "b", "c", "c"]
        >>> train, val = digitrec.data.group_split(data, patients, 0.3, seed=0)
        >>> set(train.groups) & set(val.groups), len(train) + len(val)
        (set(), 6)
    """
    dataset = _check_dataset(dataset)
    identifiers = _resolve_groups(dataset, groups)
    seed = check_int(seed, "seed", minimum=0)
    check_bool(stratify, "stratify")
    names, codes = np.unique(identifiers, return_inverse=True)
    codes = np.asarray(codes).reshape(-1)
    if len(names) < 2:
        raise InvalidInputError(f"group_split needs at least 2 groups, got {len(names)}")
    sizes = np.bincount(codes, minlength=len(names))
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(names), dtype=bool)
    if isinstance(val_size, int) and not isinstance(val_size, bool):
        count = _val_count(val_size, len(names), "groups")
        chosen[rng.permutation(len(names))[:count]] = True
    else:
        fraction = _val_count(val_size, len(dataset)) / len(dataset)
        if stratify:
            strata = _strata(dataset)
            # Each group's stratum: its most common label (ties to the smaller label).
            table = np.zeros((len(names), int(strata.max()) + 1), dtype=np.int64)
            np.add.at(table, (codes, strata), 1)
            group_strata = table.argmax(axis=1)
        else:
            group_strata = np.zeros(len(names), dtype=np.int64)
        for stratum in np.unique(group_strata):
            members = rng.permutation(np.flatnonzero(group_strata == stratum))
            take = _closest_prefix(sizes[members], fraction * sizes[members].sum())
            chosen[members[:take]] = True
        if chosen.all():
            chosen[rng.choice(np.flatnonzero(chosen))] = False
    return _parts(dataset.with_groups(identifiers), chosen[codes])


def _fold_of_groups(
    codes: np.ndarray[Any, Any],
    strata: np.ndarray[Any, Any],
    k: int,
    stratify: bool,
    rng: np.random.Generator,
) -> np.ndarray[Any, Any]:
    """Assign whole groups to folds, largest first, each to the fold that stays most even.

    Until every fold holds a group, only empty folds are candidates, so ``k``
    groups always fill ``k`` folds.
    """
    count = int(codes.max()) + 1
    columns = int(strata.max()) + 1 if stratify else 1
    table = np.zeros((count, columns), dtype=np.int64)
    np.add.at(table, (codes, strata if stratify else np.zeros_like(codes)), 1)
    expected = table.sum(axis=0) / k
    # Random order first, then a stable sort by size: ties are broken by the seed.
    order = rng.permutation(count)
    order = order[np.argsort(-table[order].sum(axis=1), kind="stable")]
    folds = np.zeros((k, columns), dtype=np.int64)
    assigned = np.empty(count, dtype=np.int64)
    for group in order:
        cost = (((folds + table[group] - expected) ** 2).sum(axis=1)) - (
            ((folds - expected) ** 2).sum(axis=1)
        )
        empty = folds.sum(axis=1) == 0
        if empty.any():  # every fold gets a group before any gets a second one
            cost = np.where(empty, cost, np.inf)
        fold = int(np.argmin(cost))
        folds[fold] += table[group]
        assigned[group] = fold
    return assigned


def kfold(
    dataset: ImageDataset,
    k: int = 5,
    *,
    groups: Any = None,
    stratify: bool = True,
    seed: int = 0,
) -> Iterator[tuple[ImageDataset, ImageDataset]]:
    """Yield ``k`` ``(train, val)`` pairs in which every image is validated exactly once.

    Without groups, images are dealt to folds class by class (with
    ``stratify=True``), so every fold holds each class's share. With groups
    (passed, or the data set's own), whole groups are dealt, largest first, each
    to the fold that keeps the folds' sizes (and with ``stratify=True`` their
    class counts) closest to even: no group is ever on both sides.

    Args:
        dataset: The data set to split.
        k: Number of folds, at least 2.
        groups: One identifier per image, or ``None`` for the data set's
            :attr:`~ImageDataset.groups` (and none at all if it has none).
        stratify: Keep each class's share alike in every fold.
        seed: Seed of the dealing; the same seed gives the same folds.

    Yields:
        ``(train, val)`` for each fold in turn; with groups, both carry them.

    Raises:
        InvalidTypeError: If ``dataset`` is not an :class:`ImageDataset`.
        InvalidInputError: If ``k`` is below 2 or leaves a fold empty.

    Example:
        >>> data = digitrec.ImageDataset.from_arrays(
        ...     np.zeros((10, 8, 8), np.uint8), np.arange(10) % 2)
        >>> [(len(train), len(val)) for train, val in digitrec.data.kfold(data, 5)]
        [(8, 2), (8, 2), (8, 2), (8, 2), (8, 2)]
    """
    dataset = _check_dataset(dataset)
    k = check_int(k, "k", minimum=2)
    check_bool(stratify, "stratify")
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    strata = _strata(dataset)
    if groups is None and dataset.groups is None:
        if k > len(dataset):
            raise InvalidInputError(f"k must be at most {len(dataset)} (the images), got {k}")
        order = rng.permutation(len(dataset))
        if stratify:
            order = order[np.argsort(strata[order], kind="stable")]
        fold_of = np.empty(len(dataset), dtype=np.int64)
        fold_of[order] = np.arange(len(dataset)) % k
    else:
        identifiers = _resolve_groups(dataset, groups)
        names, codes = np.unique(identifiers, return_inverse=True)
        codes = np.asarray(codes).reshape(-1)
        if k > len(names):
            raise InvalidInputError(f"k must be at most {len(names)} (the groups), got {k}")
        fold_of = _fold_of_groups(codes, strata, k, stratify, rng)[codes]
        dataset = dataset.with_groups(identifiers)
        if len(np.unique(fold_of)) < k:
            raise InvalidInputError(
                f"{len(names)} groups could not fill {k} folds; use a smaller k"
            )
    for fold in range(k):
        yield _parts(dataset, fold_of == fold)
