from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics  # type: ignore[import-untyped]
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import digitrec


@pytest.fixture(scope="module")
def trained(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier(seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(mnist_train[:5000])
    return model


def test_summary_reads_like_the_notebook() -> None:
    result = digitrec.AccuracyResult(total=10_000, correct=9_731)
    assert result.accuracy == pytest.approx(0.9731)
    assert str(result).splitlines() == [
        "Number of images tested: 10000",
        "Number correct: 9731",
        "Model accuracy: 97.31%",
    ]
    assert digitrec.AccuracyResult(0, 0).accuracy == 0.0


@pytest.mark.parametrize("batch_size", [1, 77, 4096])
def test_counts_match_predictions(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset, batch_size: int
) -> None:
    subset = mnist_test[:500]
    result = digitrec.evaluate_accuracy(trained, subset, batch_size=batch_size)
    predicted = digitrec.predict(trained, subset.images)
    assert result.total == 500
    assert result.correct == int((predicted == subset.labels).sum())
    assert 0.8 < result.accuracy < 1.0


def test_restores_train_mode(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    trained.train()
    digitrec.evaluate_accuracy(trained, mnist_test[:10])
    assert trained.training
    trained.eval()
    digitrec.evaluate_accuracy(trained, mnist_test[:10])
    assert not trained.training


def test_rejects_bad_arguments(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    with pytest.raises(digitrec.InvalidTypeError, match="ImageDataset"):
        digitrec.evaluate_accuracy(trained, mnist_test.images)  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match="batch_size"):
        digitrec.evaluate_accuracy(trained, mnist_test, batch_size=0)
    binary = digitrec.DigitClassifier(num_classes=2)
    with pytest.raises(digitrec.InvalidInputError, match=r"label 9.*2 classes"):
        digitrec.evaluate_accuracy(binary, mnist_test)
    assert torch.is_grad_enabled()


# --- ClassificationReport against scikit-learn ------------------------------------------------


def _reference_ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width bins (i/bins, (i+1)/bins]."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def _check_against_sklearn(
    report: digitrec.ClassificationReport, probs: np.ndarray, labels: np.ndarray
) -> None:
    classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    every = list(range(classes))
    m = sklearn_metrics
    assert report.accuracy == pytest.approx(m.accuracy_score(labels, predicted))
    present = np.unique(labels)
    assert report.balanced_accuracy == pytest.approx(
        m.recall_score(labels, predicted, labels=present, average="macro", zero_division=0),
        abs=1e-6,
    )
    assert (
        report.confusion_matrix.tolist()
        == m.confusion_matrix(labels, predicted, labels=every).tolist()
    )
    precision, recall, f1, support = m.precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0
    )
    np.testing.assert_allclose(report.precision.numpy(), precision, atol=1e-6)
    np.testing.assert_allclose(report.sensitivity.numpy(), recall, atol=1e-6)
    np.testing.assert_allclose(report.f1.numpy(), f1, atol=1e-6)
    assert report.support.tolist() == support.tolist()
    per_class = m.multilabel_confusion_matrix(labels, predicted, labels=every)
    true_negatives, false_positives = per_class[:, 0, 0], per_class[:, 0, 1]
    np.testing.assert_allclose(
        report.specificity.numpy(),
        true_negatives / np.maximum(true_negatives + false_positives, 1),
        atol=1e-6,
    )
    if classes == 2:
        auroc = m.roc_auc_score(labels, probs[:, 1])
        brier = m.brier_score_loss(labels, probs[:, 1])
    else:
        defined = [k for k in every if 0 < (labels == k).sum() < len(labels)]
        auroc = np.mean([m.roc_auc_score(labels == k, probs[:, k]) for k in defined])
        brier = m.brier_score_loss(labels, probs, labels=every, scale_by_half=True)
    assert report.auroc == pytest.approx(auroc, abs=1e-5)
    assert report.brier == pytest.approx(brier, abs=1e-5)
    assert report.nll == pytest.approx(m.log_loss(labels, probs, labels=every), abs=1e-4)
    assert report.ece == pytest.approx(_reference_ece(probs, labels), abs=1e-4)


def test_report_matches_sklearn_on_mnist(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    subset = mnist_test[:2000]
    report = digitrec.evaluate(trained, subset)
    probs = digitrec.predict_proba(trained, subset).double().numpy()
    _check_against_sklearn(report, probs, subset.labels.numpy())
    assert report.class_names == tuple("0123456789")
    assert report.total == 2000
    assert "balanced accuracy" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["support"] == report.support.tolist()


def test_binary_report_matches_sklearn(
    mnist_train: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    def threes_and_fives(data: digitrec.ImageDataset) -> digitrec.ImageDataset:
        keep = (data.labels == 3) | (data.labels == 5)
        images, labels = data.images[keep], (data.labels[keep] == 5).long()
        return digitrec.ImageDataset(images, labels, class_names=["three", "five"])

    model = digitrec.DigitClassifier(num_classes=2, class_names=["three", "five"], seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(threes_and_fives(mnist_train)[:3000])
    test = threes_and_fives(mnist_test)
    report = digitrec.evaluate(model, test)
    _check_against_sklearn(
        report, digitrec.predict_proba(model, test).double().numpy(), test.labels.numpy()
    )
    assert report.class_names == ("three", "five")
    assert report.auroc > 0.95
    # Sensitivity of one class is the specificity of the other when there are two.
    assert report.sensitivity.tolist() == pytest.approx(report.specificity.flip(0).tolist())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), classes=st.integers(2, 6), count=st.integers(2, 80))
@example(seed=5000, classes=6, count=74)
def test_report_matches_sklearn_for_random_models(seed: int, classes: int, count: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 1, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, classes, (count,), generator=generator)
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=classes, seed=seed)
    model.temperature.fill_(0.05 + seed % 7 / 3)  # sharp and soft probabilities alike
    data = digitrec.ImageDataset(images, labels)
    report = digitrec.evaluate(model, data)
    # The report works in float64: so must the reference, or sharp probabilities that
    # differ in float64 tie in float32 and move the ROC AUC (seed=5000, classes=6,
    # count=74: 8.6e-5 apart with float32 references).
    with torch.no_grad():
        probs = model.probabilities(model(images).double()).numpy()
    if (np.bincount(labels.numpy(), minlength=classes) > 0).sum() < 2:
        assert math.isnan(report.auroc)
        return
    _check_against_sklearn(report, probs, labels.numpy())


def test_accuracy_at_coverage_keeps_the_most_confident(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    subset = mnist_test[:1000]
    report = digitrec.evaluate(trained, subset)
    probs = digitrec.predict_proba(trained, subset)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == subset.labels).numpy()
    order = np.argsort(-confidence.numpy(), kind="stable")
    for share, expected_kept in ((1.0, 1000), (0.9, 900), (0.8, 800)):
        assert report.accuracy_at_coverage[share] == pytest.approx(
            correct[order[:expected_kept]].mean(), abs=2e-3
        )
    assert report.accuracy_at_coverage[0.8] >= report.accuracy_at_coverage[1.0]
    bins = report.calibration_bins
    assert int(bins["count"].sum()) == 1000
    filled = bins["count"] > 0
    assert bool(((bins["confidence"][filled] > 0) & (bins["confidence"][filled] <= 1)).all())


# --- calibration ------------------------------------------------------------------------------


def test_calibrate_minimises_validation_nll(
    trained: digitrec.DigitClassifier,
    mnist_train: digitrec.ImageDataset,
    mnist_test: digitrec.ImageDataset,
) -> None:
    val = mnist_train[50_000:52_000]
    trained.temperature.fill_(1.0)
    labels_before = digitrec.predict(trained, mnist_test[:500])
    probs_before = digitrec.predict_proba(trained, mnist_test[:500])
    temperature = digitrec.calibrate(trained, val)
    try:
        assert float(trained.temperature) == temperature
        # The optimum: no temperature on a fine grid does better on val.
        logits = torch.log(digitrec.predict_proba(trained, val).double()) * temperature

        def nll(t: float) -> float:
            return float(torch.nn.functional.cross_entropy(logits / t, val.labels))

        grid = np.exp(np.linspace(np.log(temperature) - 0.5, np.log(temperature) + 0.5, 201))
        assert nll(temperature) <= min(nll(t) for t in grid) + 1e-6
        # Labels stay; probabilities change.
        assert torch.equal(digitrec.predict(trained, mnist_test[:500]), labels_before)
        assert not torch.allclose(digitrec.predict_proba(trained, mnist_test[:500]), probs_before)
        assert digitrec.evaluate(trained, val).temperature == temperature
    finally:
        trained.temperature.fill_(1.0)


def test_calibrate_rejects_bad_data(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    with pytest.raises(digitrec.InvalidTypeError, match="ImageDataset"):
        digitrec.calibrate(trained, mnist_test.images)  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match="no images"):
        digitrec.calibrate(trained, mnist_test[:0])
    assert float(trained.temperature) == 1.0


def test_report_dict_is_strict_json(mnist_test: digitrec.ImageDataset) -> None:
    report = digitrec.evaluate(digitrec.DigitClassifier(num_classes=10, seed=0), mnist_test[:100])
    assert bool(torch.isnan(report.calibration_bins["accuracy"]).any())  # some bins are empty
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["calibration_bins"]["accuracy"].count(None) == int(
        (report.calibration_bins["count"] == 0).sum()
    )


def test_scores_given_as_python_lists_keep_their_float64_values() -> None:
    # Lists went through float32 first: the threshold for 100% sensitivity was
    # 0.20000000298..., above the positive's own score 0.2, so it called no positive.
    threshold = digitrec.evaluation.threshold_for_sensitivity([0.1, 0.2], [0, 1], 1.0)
    assert threshold == 0.2
    report = digitrec.evaluation.multilabel_metrics([[0.3], [0.7], [0.2]], [[1], [0], [1]])
    assert report.ece.dtype == torch.float64
    assert report.auroc.dtype == torch.float64
    # 0.3 and 0.2 are the positives: the 100%-sensitivity cut is exactly 0.2.
    cuts = digitrec.evaluation.multilabel_thresholds(
        [[0.3], [0.7], [0.2]], [[1], [0], [1]], sensitivity=1.0
    )
    assert cuts.tolist() == [0.2]
