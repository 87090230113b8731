"""Bootstrap intervals against a plain loop with scikit-learn and scipy; operating points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (  # type: ignore[import-untyped]
    balanced_accuracy_score,
    recall_score,
    roc_auc_score,
)

import digitrec
from digitrec.evaluation import (
    BootstrapMetric,
    bootstrap_ci,
    bootstrap_ci_from,
    choose_threshold,
    measure_threshold,
    threshold_for_sensitivity,
)


def predictions(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[labels]
    logits[: n // 10] = np.round(logits[: n // 10], 1)  # some tied scores
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, labels


def reference(name: str, probs: np.ndarray, labels: np.ndarray, positive: int) -> float:
    predicted = probs.argmax(axis=1)
    actual, called = labels == positive, predicted == positive
    if name == "accuracy":
        return float((predicted == labels).mean())
    if name == "balanced_accuracy":
        return float(balanced_accuracy_score(labels, predicted))
    if name == "auroc":
        present = np.unique(labels)
        if probs.shape[1] == 2:
            return (
                float(roc_auc_score(actual, probs[:, positive])) if len(present) == 2 else math.nan
            )
        aucs = [roc_auc_score(labels == c, probs[:, c]) for c in present]
        return float(np.mean(aucs)) if len(present) > 1 else math.nan
    if name == "sensitivity":
        return float(recall_score(actual, called, zero_division=np.nan))
    if name == "specificity":
        return float(recall_score(~actual, ~called, zero_division=np.nan))
    if name == "ppv":
        return float(actual[called].mean()) if called.any() else math.nan
    return float((~actual)[~called].mean()) if (~called).any() else math.nan


METRICS: list[BootstrapMetric] = [
    "accuracy",
    "balanced_accuracy",
    "auroc",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
]


@pytest.mark.parametrize("classes", [2, 3])
def test_intervals_match_a_plain_loop_with_scikit_learn(classes: int) -> None:
    probs, labels = predictions(150, classes, seed=classes)
    resamples, level = 200, 0.9
    report = bootstrap_ci_from(
        probs, labels, metrics=METRICS, n_resamples=resamples, confidence=level, seed=7
    )
    draws = np.random.default_rng(7).integers(0, len(labels), (resamples, len(labels)))
    for name in METRICS:
        values = np.array([reference(name, probs[d], labels[d], 1) for d in draws])
        values = values[~np.isnan(values)]
        low, high = np.percentile(values, [5, 95])
        interval = report[name]
        assert interval.estimate == pytest.approx(reference(name, probs, labels, 1), abs=1e-12)
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12), name


def test_accuracy_interval_agrees_with_scipy_percentile_bootstrap() -> None:
    probs, labels = predictions(400, 2, seed=0)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    ours = bootstrap_ci_from(probs, labels, metrics=["accuracy"], n_resamples=4000, seed=1)
    theirs = stats.bootstrap(
        (correct,), np.mean, n_resamples=4000, method="percentile", random_state=2
    ).confidence_interval
    # Different random draws: agreement within Monte Carlo error.
    assert ours["accuracy"].low == pytest.approx(theirs.low, abs=0.006)
    assert ours["accuracy"].high == pytest.approx(theirs.high, abs=0.006)


def test_groups_are_drawn_whole_and_widen_the_interval() -> None:
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(40), 10)
    # Each patient's images agree: the effective sample is 40 patients, not 400 images.
    labels = np.repeat(rng.integers(0, 2, 40), 10)
    right = np.repeat(rng.random(40) < 0.8, 10)
    predicted = np.where(right, labels, 1 - labels)
    probs = np.stack([1 - predicted, predicted], axis=1) * 0.8 + 0.1
    by_image = bootstrap_ci_from(probs, labels, metrics=["accuracy"], seed=0)
    by_patient = bootstrap_ci_from(probs, labels, metrics=["accuracy"], groups=patients, seed=0)
    assert by_patient.unit == "groups"
    assert by_patient.n_units == 40
    width = by_patient["accuracy"].high - by_patient["accuracy"].low
    assert width > 2 * (by_image["accuracy"].high - by_image["accuracy"].low)
    # The same draws as a loop over patients.
    draws = np.random.default_rng(0).integers(0, 40, (1000, 40))
    per_patient = right[::10].astype(float)
    low, high = np.percentile(per_patient[draws].mean(axis=1), [2.5, 97.5])
    assert (by_patient["accuracy"].low, by_patient["accuracy"].high) == pytest.approx((low, high))


def test_report_prints_and_serializes() -> None:
    probs, labels = predictions(50, 2, seed=3)
    report = bootstrap_ci_from(probs, labels, n_resamples=50)
    text = str(report)
    assert "95% percentile-bootstrap intervals, 50 resamples of 50 images" in text
    assert "auroc" in text
    assert set(report.to_dict()["intervals"]) == {"accuracy", "auroc", "sensitivity", "specificity"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": ["f2"]}, "metrics must be some of"),
        ({"confidence": 1.0}, "confidence"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"positive": 2}, "positive must be < 2"),
        ({"groups": [1, 2]}, r"shape \(10,\)"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    probs, labels = predictions(10, 2, seed=0)
    with pytest.raises(digitrec.InvalidInputError, match=match):
        bootstrap_ci_from(probs, labels, **kwargs)  # type: ignore[arg-type]


def binary_mnist(n: int) -> digitrec.ImageDataset:
    data = digitrec.load_mnist("test")[:n]
    return digitrec.ImageDataset(data.images, (data.labels == 1).long(), ["other", "one"])


def test_bootstrap_ci_uses_the_model_and_the_data_sets_groups() -> None:
    model = digitrec.DigitClassifier(num_classes=2, seed=0)
    data = binary_mnist(120)
    probs = digitrec.predict_proba(model, data)
    direct = bootstrap_ci(model, data, n_resamples=100)
    assert direct.to_dict() == bootstrap_ci_from(probs, data.labels, n_resamples=100).to_dict()
    grouped = bootstrap_ci(model, data.with_groups(np.arange(120) // 4), n_resamples=100)
    assert grouped.unit == "groups"
    assert grouped.n_units == 30


def test_threshold_for_sensitivity() -> None:
    rng = np.random.default_rng(0)
    scores, targets = rng.random(500), rng.random(500) < 0.3
    for target in (0.5, 0.8, 0.95, 1.0):
        threshold = threshold_for_sensitivity(scores, targets, target)
        found = (scores[targets] >= threshold).mean()
        assert found >= target
        # The highest such threshold: any higher score finds fewer.
        assert (scores[targets] > threshold).mean() < target
    with pytest.raises(digitrec.InvalidInputError, match="no positive"):
        threshold_for_sensitivity([0.1, 0.2], [0, 0], 0.9)
    with pytest.raises(digitrec.InvalidInputError, match="sensitivity"):
        threshold_for_sensitivity([0.1, 0.2], [0, 1], 0.0)


def test_choose_on_val_and_measure_on_test() -> None:
    model = digitrec.DigitClassifier(num_classes=2, seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(
        digitrec.ImageDataset(
            digitrec.load_mnist("train")[:3000].images,
            (digitrec.load_mnist("train")[:3000].labels == 1).long(),
        )
    )
    data = binary_mnist(1000)
    val, test = data[:500], data[500:]
    point = choose_threshold(model, val, sensitivity=0.99)
    assert point.sensitivity >= 0.99
    assert point.target_sensitivity == 0.99
    probs = digitrec.predict_proba(model, test)[:, 1]
    measured = measure_threshold(model, test, point)
    actual = test.labels == 1
    assert measured.sensitivity == pytest.approx(
        float((probs[actual] >= point.threshold).double().mean())
    )
    assert measured.specificity == pytest.approx(
        float((probs[~actual] < point.threshold).double().mean())
    )
    assert measured.positives == int(actual.sum())
    assert "threshold" in str(measured)
    assert measure_threshold(model, test, 1.1).sensitivity == 0.0
