"""Multi-label metrics against scikit-learn and torchmetrics; multi-label data sets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import recall_score, roc_auc_score  # type: ignore[import-untyped]
from torchmetrics.functional.classification import binary_calibration_error

import digitrec
from digitrec.evaluation import (
    evaluate_multilabel,
    multilabel_metrics,
    multilabel_thresholds,
)


def random_case(seed: int, n: int, labels: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, labels)) < rng.random(labels)).astype(np.int64)
    logits = rng.normal(size=(n, labels)) + 1.2 * targets
    logits[: n // 5] = np.round(logits[: n // 5])  # ties
    return logits, targets


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 80),
    labels=st.integers(1, 6),
    threshold=st.floats(0.05, 0.95),
)
def test_metrics_match_scikit_learn(seed: int, n: int, labels: int, threshold: float) -> None:
    logits, targets = random_case(seed, n, labels)
    probs = 1 / (1 + np.exp(-logits))
    report = multilabel_metrics(logits, targets, logits=True, thresholds=threshold)
    from_probs = multilabel_metrics(probs, targets, thresholds=threshold)
    assert torch.allclose(report.auroc, from_probs.auroc, equal_nan=True)
    for j in range(labels):
        truth, called = targets[:, j] == 1, probs[:, j] >= threshold
        expected_auc = roc_auc_score(truth, probs[:, j]) if 0 < truth.sum() < n else math.nan
        expected_sens = (
            recall_score(truth, called, zero_division=np.nan) if truth.any() else math.nan
        )
        expected_spec = (
            recall_score(~truth, ~called, zero_division=np.nan) if (~truth).any() else math.nan
        )
        for got, expected in (
            (report.auroc[j], expected_auc),
            (report.sensitivity[j], expected_sens),
            (report.specificity[j], expected_spec),
        ):
            assert float(got) == pytest.approx(expected, abs=1e-9, nan_ok=True)
        ece = binary_calibration_error(
            torch.tensor(probs[:, j]), torch.tensor(targets[:, j]), n_bins=15, norm="l1"
        )
        assert float(report.ece[j]) == pytest.approx(float(ece), abs=1e-6)
        assert int(report.support[j]) == int(truth.sum())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 80),
    labels=st.integers(1, 5),
    target=st.floats(0.1, 1.0),
)
def test_thresholds_reach_the_target_on_the_data_they_were_chosen_on(
    seed: int, n: int, labels: int, target: float
) -> None:
    logits, targets = random_case(seed, n, labels)
    thresholds = multilabel_thresholds(logits, targets, sensitivity=target, logits=True)
    report = multilabel_metrics(logits, targets, thresholds=thresholds, logits=True)
    for j in range(labels):
        if targets[:, j].any():
            assert float(report.sensitivity[j]) >= target - 1e-12
        else:
            assert math.isnan(float(thresholds[j]))


def test_report_prints_and_serializes_and_refuses_bad_input() -> None:
    logits, targets = random_case(0, 30, 3)
    report = multilabel_metrics(logits, targets, logits=True, label_names=["a", "b", "c"])
    assert "macro ROC AUC" in str(report)
    assert report.to_dict()["label_names"] == ["a", "b", "c"]
    with pytest.raises(digitrec.InvalidInputError, match="targets must be 0 or 1"):
        multilabel_metrics(logits, targets * 2, logits=True)
    with pytest.raises(digitrec.InvalidInputError, match=r"pass logits=True"):
        multilabel_metrics(logits, targets)
    with pytest.raises(digitrec.InvalidInputError, match="thresholds must be"):
        multilabel_metrics(logits, targets, logits=True, thresholds=[0.5, 0.5])
    with pytest.raises(digitrec.InvalidInputError, match=r"shape \(N, L\)"):
        multilabel_metrics(logits[:, 0], targets[:, 0])


def test_multilabel_data_sets(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "chestmnist.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 2, (12, 14)),
    )
    data = digitrec.ImageDataset.from_npz(path, "train")
    assert data.multilabel
    assert data.labels.shape == (12, 14)
    assert data.num_classes == 14
    _, label = data[0]
    assert label.shape == (14,)
    assert data[2:5].labels.shape == (3, 14)
    train, val = digitrec.data.stratified_split(data, 4, seed=0)
    assert len(train) + len(val) == 12
    with pytest.raises(digitrec.InvalidInputError, match="0 or 1"):
        digitrec.ImageDataset(data.images, data.labels * 2)
    with pytest.raises(digitrec.InvalidInputError, match="name each of the 14"):
        digitrec.ImageDataset(data.images, data.labels, ["a", "b"])


def test_evaluate_multilabel_uses_the_model() -> None:
    _, targets = random_case(1, 40, 3)
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    data = digitrec.ImageDataset.from_arrays(images, targets, class_names=["x", "y", "z"])
    model = digitrec.DigitClassifier("cnn", num_classes=3, task="multilabel", seed=0)
    report = evaluate_multilabel(model, data, thresholds=0.4)
    probs = model.probabilities(model.eval()(data.images).double()).detach()
    expected = multilabel_metrics(probs, targets, thresholds=0.4)
    assert torch.allclose(report.sensitivity, expected.sensitivity, equal_nan=True)
    assert report.label_names == ("x", "y", "z")
    with pytest.raises(digitrec.InvalidInputError, match="task='multilabel'"):
        evaluate_multilabel(digitrec.DigitClassifier(num_classes=3), data)
