"""Tests that kill ``evaluation`` mutants which survived the rest of the suite.

See docs/quality.rst. Figures are checked against a hand computation or
scikit-learn; messages and printed tables are compared whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

import digitrec
from digitrec.errors import InvalidInputError, InvalidTypeError
from digitrec.evaluation import (
    bootstrap_ci,
    bootstrap_ci_from,
    measure_threshold,
    multilabel_metrics,
    multilabel_thresholds,
    threshold_for_sensitivity,
)
from digitrec.evaluation._predictions import probabilities
from digitrec.evaluation.bootstrap import BootstrapReport, Interval
from digitrec.evaluation.multilabel import MultilabelReport, binary_ece
from digitrec.evaluation.ood import ood_metrics
from digitrec.evaluation.thresholds import OperatingPoint


def _error(function: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidInputError) as caught:
        function(*args, **kwargs)  # type: ignore[operator]
    return str(caught.value)


# --------------------------------------------------------------------------- bootstrap


def test_interval_and_bootstrap_report_print_exactly() -> None:
    assert str(Interval(0.9135, 0.891, 0.9343)) == "0.9135 (0.8910 to 0.9343)"
    report = BootstrapReport(
        intervals={"accuracy": Interval(0.75, 0.6, 0.9), "npv": Interval(math.nan, math.nan, 1.0)},
        confidence=0.9,
        n_resamples=200,
        unit="groups",
        n_units=12,
        positive=0,
    )
    assert str(report).splitlines() == [
        "90% percentile-bootstrap intervals, 200 resamples of 12 groups:",
        "  accuracy  0.7500 (0.6000 to 0.9000)",
        "  npv       nan (nan to 1.0000)",
    ]
    assert report["npv"] is report.intervals["npv"]
    assert report.to_dict() == {
        "intervals": {
            "accuracy": {"estimate": 0.75, "low": 0.6, "high": 0.9},
            "npv": {"estimate": None, "low": None, "high": 1.0},
        },
        "confidence": 0.9,
        "n_resamples": 200,
        "unit": "groups",
        "n_units": 12,
        "positive": 0,
    }


def test_bootstrap_settings_and_defaults() -> None:
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 1])
    report = bootstrap_ci_from(probs, labels, n_resamples=20)
    assert list(report.intervals) == ["accuracy", "auroc", "sensitivity", "specificity"]
    assert (report.confidence, report.n_resamples, report.unit, report.n_units) == (
        0.95,
        20,
        "images",
        4,
    )
    assert report.positive == 1
    # Hand computation: predicted 0, 1, 0, 1; positive class 1 has three images.
    assert report["accuracy"].estimate == 0.75
    assert report["sensitivity"].estimate == 2 / 3
    assert report["specificity"].estimate == 1.0
    assert report["auroc"].estimate == 1.0  # every positive scores above the negative
    # Class 0 as positive: sensitivity and specificity swap roles.
    swapped = bootstrap_ci_from(probs, labels, positive=0, metrics=["sensitivity", "ppv", "npv"])
    assert swapped.positive == 0
    assert swapped["sensitivity"].estimate == 1.0
    assert swapped["ppv"].estimate == 0.5
    assert swapped["npv"].estimate == 1.0


def test_bootstrap_messages_are_exact() -> None:
    probs, labels = np.full((3, 2), 0.5), np.array([0, 1, 1])
    assert _error(bootstrap_ci_from, probs[0], labels) == (
        "probs must be (N, classes) and labels (N,) with N >= 1, got (2,) and (3,)"
    )
    assert _error(bootstrap_ci_from, probs, labels[:2]).endswith("got (3, 2) and (2,)")
    assert _error(bootstrap_ci_from, probs, labels[:, None]).endswith("got (3, 2) and (3, 1)")
    assert _error(bootstrap_ci_from, probs[:0], labels[:0]).endswith("got (0, 2) and (0,)")
    assert _error(bootstrap_ci_from, probs, labels, metrics=[]) == (
        "metrics must be some of ('accuracy', 'balanced_accuracy', 'auroc', 'sensitivity', "
        "'specificity', 'ppv', 'npv'), got []"
    )
    assert _error(bootstrap_ci_from, probs, labels, metrics=["accuracy", "f1"]).endswith(
        "got ['accuracy', 'f1']"
    )
    assert _error(bootstrap_ci_from, probs, labels, positive=2) == (
        "positive must be < 2 classes, got 2"
    )
    assert "positive" in _error(bootstrap_ci_from, probs, labels, positive=-1)
    assert "seed" in _error(bootstrap_ci_from, probs, labels, seed=-1)
    assert _error(bootstrap_ci_from, probs, labels, confidence=0.0) == (
        "confidence must be a finite number in (0, 1), got 0.0"
    )
    assert _error(bootstrap_ci_from, probs, labels, n_resamples=0) == (
        "n_resamples must be a positive integer, got 0"
    )
    # positive = 1 is the last class of two and is allowed; seed 0 is allowed.
    assert bootstrap_ci_from(probs, labels, positive=1, seed=0, n_resamples=1).n_resamples == 1


def test_bootstrap_metric_undefined_everywhere_gives_nan_interval() -> None:
    # No image of class 1: its sensitivity is undefined on the data and in every resample.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    report = bootstrap_ci_from(probs, np.zeros(3, dtype=np.int64), metrics=["sensitivity"])
    interval = report["sensitivity"]
    assert math.isnan(interval.estimate)
    assert math.isnan(interval.low)
    assert math.isnan(interval.high)
    assert report.to_dict()["intervals"]["sensitivity"] == {
        "estimate": None,
        "low": None,
        "high": None,
    }


def test_bootstrap_groups_are_drawn_by_their_sorted_names() -> None:
    # Groups named by strings; the draws are over the sorted unique names.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    groups = ["b", "a", "b", "c"]
    report = bootstrap_ci_from(probs, labels, metrics=["accuracy"], groups=groups, seed=3)
    assert (report.unit, report.n_units) == ("groups", 3)
    draws = np.random.default_rng(3).integers(0, 3, (1000, 3))
    codes = np.array([1, 0, 1, 2])  # a -> 0, b -> 1, c -> 2
    correct = (probs.argmax(axis=1) == labels).astype(float)
    values = []
    for draw in draws:
        weights = np.bincount(draw, minlength=3)[codes].astype(float)
        values.append(weights @ correct / weights.sum())
    low, high = np.percentile(values, [2.5, 97.5])
    assert (report["accuracy"].low, report["accuracy"].high) == pytest.approx((low, high))


def test_bootstrap_ci_checks_its_data_and_prefers_given_groups() -> None:
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    with pytest.raises(InvalidTypeError) as caught:
        bootstrap_ci(model, [1, 2])  # type: ignore[arg-type]
    assert str(caught.value) == "data must be a digitrec.ImageDataset, got list"
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 1, 8, 8), generator=generator, dtype=torch.uint8)
    data = digitrec.ImageDataset(images, torch.tensor([0, 1] * 6)).with_groups(np.arange(12) // 2)
    assert bootstrap_ci(model, data, n_resamples=5).n_units == 6
    given = bootstrap_ci(model, data, n_resamples=5, groups=np.arange(12) // 4)
    assert given.n_units == 3
    ungrouped = digitrec.ImageDataset(images, torch.tensor([0, 1] * 6))
    assert bootstrap_ci(model, ungrouped, n_resamples=5).unit == "images"


# --------------------------------------------------------------------------- thresholds


def test_threshold_for_sensitivity_counts_positives_exactly() -> None:
    scores = np.arange(1.0, 11.0)  # ten positives scoring 1 ... 10
    truth = np.ones(10, dtype=bool)
    # 0.7 * 10 is 7.000000000000001 in floating point: 7 positives are asked for, not 8.
    assert threshold_for_sensitivity(scores, truth, 0.7) == 4.0
    assert threshold_for_sensitivity(scores, truth, 0.71) == 3.0
    assert threshold_for_sensitivity(scores, truth, 1.0) == 1.0
    # A tiny target still asks for one positive: the highest.
    assert threshold_for_sensitivity(scores, truth, 1e-12) == 10.0
    # Negatives do not count: of the positives 0.9, 0.8, 0.4, 0.2, three are needed.
    mixed = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    assert threshold_for_sensitivity(mixed, np.array([1, 1, 0, 1, 0, 1]), 0.75) == 0.4


def test_threshold_for_sensitivity_messages_are_exact() -> None:
    assert _error(threshold_for_sensitivity, [0.1, 0.2], [1, 0, 1], 0.9) == (
        "scores and targets must both have shape (N,), got (2,) and (3,)"
    )
    assert _error(threshold_for_sensitivity, [[0.1, 0.2]], [[1, 0]], 0.9) == (
        "scores and targets must both have shape (N,), got (1, 2) and (1, 2)"
    )
    assert _error(threshold_for_sensitivity, [0.1, 0.2], [0, 0], 0.9) == (
        "targets hold no positive, so no sensitivity can be reached"
    )
    assert threshold_for_sensitivity(np.array([0.1, 0.2]), [0, 1], 1.0) == 0.2  # 1 is allowed


def test_operating_point_prints_exactly() -> None:
    point = OperatingPoint(0.31, 0.95, 0.82, 390, 234, 1, 0.95)
    assert str(point) == (
        "threshold 0.3100: sensitivity 0.9500 (of 390), specificity 0.8200 (of 234)"
    )


def _binary_model_and_data() -> tuple[digitrec.DigitClassifier, digitrec.ImageDataset]:
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=3, seed=2)
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (30, 1, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 3, (30,), generator=generator)
    return model, digitrec.ImageDataset(images, labels)


def test_measure_threshold_is_inclusive_and_takes_the_points_class() -> None:
    model, data = _binary_model_and_data()
    probs = probabilities(model, data, None, 1024)  # what the threshold functions compare
    for positive in (0, 2):
        scores = probs[:, positive]
        actual = data.labels == positive
        cut = float(scores[actual].min())  # exactly one positive's score
        point = OperatingPoint(cut, 0.0, 0.0, 0, 0, positive, 0.5)
        measured = measure_threshold(model, data, point)
        assert measured.positive == positive
        assert measured.target_sensitivity == 0.5
        assert measured.threshold == cut
        assert measured.sensitivity == 1.0  # scores >= threshold, the equal one included
        assert measured.positives == int(actual.sum())
        assert measured.negatives == 30 - int(actual.sum())
        expected_specificity = float((scores[~actual] < cut).double().mean())
        assert measured.specificity == pytest.approx(expected_specificity)
    # An explicit class wins over the point's; a plain number measures class 1.
    point = OperatingPoint(0.5, 0.0, 0.0, 0, 0, 2, None)
    assert measure_threshold(model, data, point, positive=0).positive == 0
    plain = measure_threshold(model, data, 0.3)
    assert (plain.positive, plain.target_sensitivity) == (1, None)


def test_measure_threshold_without_negatives_or_positives_is_nan() -> None:
    model, data = _binary_model_and_data()
    only_ones = digitrec.ImageDataset(data.images, torch.ones(30, dtype=torch.long))
    point = measure_threshold(model, only_ones, 0.0)
    assert (point.sensitivity, point.positives, point.negatives) == (1.0, 30, 0)
    assert math.isnan(point.specificity)
    none = measure_threshold(model, only_ones, 0.0, positive=2)
    assert math.isnan(none.sensitivity)
    assert (none.specificity, none.positives, none.negatives) == (0.0, 0, 30)


def test_threshold_functions_check_their_data_and_class() -> None:
    model, data = _binary_model_and_data()
    with pytest.raises(InvalidTypeError) as caught:
        measure_threshold(model, "data", 0.5)  # type: ignore[arg-type]
    assert str(caught.value) == "data must be a digitrec.ImageDataset, got str"
    with pytest.raises(InvalidTypeError) as caught:
        digitrec.evaluation.choose_threshold(model, None)  # type: ignore[arg-type]
    assert str(caught.value) == "val must be a digitrec.ImageDataset, got NoneType"
    assert _error(measure_threshold, model, data, 0.5, positive=3) == (
        "positive must be < 3 classes, got 3"
    )
    assert "positive" in _error(measure_threshold, model, data, 0.5, positive=-1)
    point = digitrec.evaluation.choose_threshold(model, data, sensitivity=0.5, positive=2)
    assert point.positive == 2
    assert point.target_sensitivity == 0.5
    scores = probabilities(model, data, None, 1024)[:, 2]
    assert point.threshold == threshold_for_sensitivity(scores, data.labels == 2, 0.5)


# --------------------------------------------------------------------------- multilabel


def test_multilabel_input_messages_are_exact() -> None:
    probs = np.array([[0.2, 0.9], [0.6, 0.1]])
    assert _error(multilabel_metrics, probs, np.array([[1, 0]])) == (
        "scores and targets must both have shape (N, L) with N >= 1, got (2, 2) and (1, 2)"
    )
    assert _error(multilabel_metrics, np.zeros((0, 2)), np.zeros((0, 2))).endswith(
        "got (0, 2) and (0, 2)"
    )
    assert _error(multilabel_metrics, probs, np.array([[0.5, 1.0], [0.0, 1.0]])) == (
        "targets must be 0 or 1"
    )
    assert _error(multilabel_metrics, probs, np.array([[2, 0], [1, 1]])) == (
        "targets must be 0 or 1, got values from 0 to 2"
    )
    assert _error(multilabel_metrics, probs, np.array([[-1, 0], [1, 1]])) == (
        "targets must be 0 or 1, got values from -1 to 1"
    )
    assert _error(multilabel_metrics, probs - 0.5, np.array([[1, 0], [0, 1]])) == (
        "probabilities must lie in [0, 1]; pass logits=True for logits"
    )
    assert _error(multilabel_metrics, probs + 0.2, np.array([[1, 0], [0, 1]])).startswith(
        "probabilities must lie in [0, 1]"
    )
    assert _error(multilabel_metrics, probs, np.eye(2, dtype=int), thresholds=[0.1, 0.2, 0.3]) == (
        "thresholds must be one number or 2, got 3"
    )
    assert _error(multilabel_metrics, probs, np.eye(2, dtype=int), label_names=["a"]) == (
        "label_names must name 2 labels, got 1"
    )
    # The bounds are allowed, as float 0/1 and boolean targets.
    edge = multilabel_metrics(np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2) > 0)
    assert edge.support.tolist() == [1, 1]
    floats = multilabel_metrics(np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2))
    assert floats.sensitivity.tolist() == [0.0, 0.0]


def test_multilabel_metrics_by_hand() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 0.0], [1.0, 1.0, 0.0]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    report = multilabel_metrics(logits, targets, logits=True, thresholds=[0.7, 0.5, 0.5])
    probs = torch.sigmoid(logits.double())
    assert torch.equal(report.thresholds, torch.tensor([0.7, 0.5, 0.5], dtype=torch.float64))
    # Label 0: probs 0.881 (pos), 0.047, 0.731 (neg): both >= 0.7 called.
    # Label 1: probs 0.269 (neg), 0.622 (pos), 0.731 (pos). Label 2: no positive.
    assert report.sensitivity[:2].tolist() == [1.0, 1.0]
    assert report.specificity.tolist() == [0.5, 1.0, 0.0]
    assert math.isnan(float(report.sensitivity[2]))
    assert report.support.tolist() == [1, 2, 0]
    assert report.auroc[:2].tolist() == [1.0, 1.0]
    assert math.isnan(float(report.auroc[2]))
    assert report.macro_auroc == 1.0
    assert report.label_names == ("0", "1", "2")
    expected_ece = [binary_ece(probs[:, j], targets[:, j] > 0) for j in range(3)]
    assert report.ece.tolist() == pytest.approx(expected_ece, rel=1e-6)  # stored as float32
    one = multilabel_metrics(np.array([[0.3], [0.6]]), np.array([[1], [1]]))
    assert math.isnan(one.macro_auroc)
    assert one.thresholds.tolist() == [0.5]


def test_binary_ece_bins_are_right_closed_fifteenths() -> None:
    fifteenth = 1 / 15
    probs = torch.tensor([0.0, fifteenth, fifteenth + 1e-9, 1.0], dtype=torch.float64)
    truth = torch.tensor([False, True, False, True])
    # Bin 0 holds 0 and 1/15 (gaps 0 and 1/15 - 1); bin 1 holds 1/15 + 1e-9; bin 14 holds 1.
    expected = (abs(0.0 + fifteenth - 1.0) + (fifteenth + 1e-9) + 0.0) / 4
    assert binary_ece(probs, truth) == pytest.approx(expected, abs=1e-15)
    # Gaps of opposite sign in one bin cancel: the error of the bin's means.
    assert (
        binary_ece(torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([True, False])) == 0
    )


def test_multilabel_thresholds_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.2, 0.3], [0.6, 0.7, 0.1], [0.3, 0.6, 0.2]])
    targets = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    got = multilabel_thresholds(scores, targets, sensitivity=1.0)
    assert got.dtype == torch.float64
    six = float(torch.tensor(0.6))  # the float32 score, widened to float64 exactly
    assert got[:2].tolist() == [six, six]
    assert math.isnan(float(got[2]))
    half = multilabel_thresholds(scores, targets, sensitivity=0.5)
    assert half[:2].tolist() == pytest.approx([0.9, 0.7])
    # Logits: thresholds come back on the probability scale.
    logit = multilabel_thresholds(
        torch.logit(scores.double()), targets, logits=True, sensitivity=1.0
    )
    assert logit[:2].tolist() == pytest.approx([0.6, 0.6])


def test_multilabel_report_prints_and_serializes_exactly() -> None:
    report = MultilabelReport(
        label_names=("effusion", "b"),
        support=torch.tensor([12, 0]),
        thresholds=torch.tensor([0.25, math.nan], dtype=torch.float64),
        sensitivity=torch.tensor([0.75, math.nan], dtype=torch.float64),
        specificity=torch.tensor([0.5, 1.0], dtype=torch.float64),
        auroc=torch.tensor([0.875, math.nan], dtype=torch.float64),
        ece=torch.tensor([0.0625, 0.125], dtype=torch.float64),
        macro_auroc=0.875,
    )
    assert str(report).splitlines() == [
        "label     support  threshold  sensitivity  specificity   auroc     ece",
        "effusion       12     0.2500        0.750        0.500  0.8750  0.0625",
        "b               0        nan          nan        1.000     nan  0.1250",
        "macro ROC AUC: 0.8750",
    ]
    short = MultilabelReport(
        ("a",), torch.tensor([1]), *(torch.tensor([0.5], dtype=torch.float64),) * 5, math.nan
    )
    assert str(short).splitlines()[:2] == [
        "label  support  threshold  sensitivity  specificity   auroc     ece",
        "a            1     0.5000        0.500        0.500  0.5000  0.5000",
    ]
    assert report.to_dict() == {
        "label_names": ["effusion", "b"],
        "support": [12.0, 0.0],
        "thresholds": [0.25, None],
        "sensitivity": [0.75, None],
        "specificity": [0.5, 1.0],
        "auroc": [0.875, None],
        "ece": [0.0625, 0.125],
        "macro_auroc": 0.875,
    }
    assert short.to_dict()["macro_auroc"] is None


def test_evaluate_multilabel_checks_model_and_data() -> None:
    model = digitrec.DigitClassifier(
        "mlp", input_shape=(1, 8, 8), num_classes=2, task="multilabel", seed=0
    )
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(InvalidTypeError) as caught:
        digitrec.evaluation.evaluate_multilabel(model, images)  # type: ignore[arg-type]
    assert str(caught.value) == "data must be a digitrec.ImageDataset, got Tensor"
    single = digitrec.ImageDataset(images, torch.tensor([0, 1, 0, 1]))
    assert _error(digitrec.evaluation.evaluate_multilabel, model, single) == (
        "data must have multi-label labels (N, 2), got (4,)"
    )
    three = digitrec.ImageDataset(images, torch.tensor([[0, 1, 1]] * 4))
    assert _error(digitrec.evaluation.evaluate_multilabel, model, three) == (
        "data must have multi-label labels (N, 2), got (4, 3)"
    )
    plain = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    two = digitrec.ImageDataset(images, torch.tensor([[0, 1], [1, 1]] * 2), ["p", "q"])
    assert _error(digitrec.evaluation.evaluate_multilabel, plain, two) == (
        "model must have task='multilabel', got 'multiclass'"
    )
    report = digitrec.evaluation.evaluate_multilabel(model, two, thresholds=0.0, batch_size=3)
    assert report.label_names == ("p", "q")
    assert report.sensitivity.tolist() == [1.0, 1.0]
    assert report.support.tolist() == [2, 4]
    assert "batch_size" in _error(digitrec.evaluation.evaluate_multilabel, model, two, batch_size=0)


# --------------------------------------------------------------------------- ood


def test_ood_metrics_by_hand_and_messages() -> None:
    # Of the six (in, out) pairs, out 3 beats in 1 and 2 and ties in 3; out 0 beats none.
    inside, outside = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 0.0])
    auroc, fpr = ood_metrics(inside, outside)
    truth = np.r_[np.zeros(3), np.ones(2)]
    assert auroc == pytest.approx(roc_auc_score(truth, np.r_[inside, outside]), abs=1e-15)
    assert auroc == pytest.approx((2.5 + 0.0) / 6, abs=1e-15)
    # 95% of three images accepted needs all three: the threshold is 3; both outside pass.
    assert fpr == 1.0
    assert ood_metrics(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == (1.0, 0.0)
    assert ood_metrics(torch.tensor([[5.0]]), torch.tensor([[5.0]])) == (0.5, 1.0)
    assert _error(ood_metrics, torch.tensor([]), torch.tensor([1.0, 2.0])) == (
        "need scores of both kinds, got 0 in and 2 out"
    )
    assert _error(ood_metrics, torch.tensor([1.0]), torch.tensor([])) == (
        "need scores of both kinds, got 1 in and 0 out"
    )
    assert _error(ood_metrics, torch.tensor([1.0]), torch.tensor([math.nan])) == (
        "scores must not be NaN"
    )
    assert _error(ood_metrics, torch.tensor([math.nan]), torch.tensor([1.0])) == (
        "scores must not be NaN"
    )


# --------------------------------------------------------------------------- report, accuracy


def _small_model(classes: int = 3, **kwargs: object) -> digitrec.DigitClassifier:
    return digitrec.DigitClassifier(
        "mlp",
        input_shape=(1, 8, 8),
        num_classes=classes,
        seed=1,
        **kwargs,  # type: ignore[arg-type]
    )


def _images(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 1, 8, 8), generator=generator, dtype=torch.uint8)


def test_report_measures_ood_separation_with_the_energy_score() -> None:
    model = _small_model()
    data = digitrec.ImageDataset(_images(40, 1), torch.arange(40) % 3)
    outside = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    report = digitrec.evaluate(model, data, ood=outside, batch_size=16)
    expected = ood_metrics(
        digitrec.ood_scores(model, data.images), digitrec.ood_scores(model, outside)
    )
    assert (report.ood_auroc, report.ood_fpr_at_95_tpr) == pytest.approx(expected, abs=1e-12)
    line = (
        f"out-of-distribution set: AUROC {expected[0]:.4f}, accepted at 95% TPR "
        f"{100 * expected[1]:.2f}%"
    )
    text = str(report).splitlines()
    assert text[text.index("confusion matrix (rows actual, columns predicted):") - 1] == line
    assert report.to_dict()["ood_fpr_at_95_tpr"] == report.ood_fpr_at_95_tpr
    plain = digitrec.evaluate(model, data)
    assert (plain.ood_auroc, plain.ood_fpr_at_95_tpr) == (None, None)
    assert not any(line.startswith("out-of-distribution") for line in str(plain).splitlines())


def test_report_numbers_the_classes_when_the_data_names_too_few() -> None:
    # Data of two named classes measured by a three-class model: the names cannot
    # label the model's classes, so numbers do.
    data = digitrec.ImageDataset(_images(12, 2), torch.tensor([0, 1] * 6), ["cat", "dog"])
    report = digitrec.evaluate(_small_model(), data)
    assert report.class_names == ("0", "1", "2")
    assert report.support.tolist() == [6, 6, 0]
    for rate in (report.precision, report.sensitivity, report.specificity, report.f1):
        assert rate.dtype == torch.float64
    named = digitrec.evaluate(_small_model(2), data)
    assert named.class_names == ("cat", "dog")


def test_accuracy_result_of_nothing_and_its_summary() -> None:
    assert digitrec.AccuracyResult(total=0, correct=0).accuracy == 0.0
    assert str(digitrec.AccuracyResult(total=8, correct=7)) == (
        "Number of images tested: 8\nNumber correct: 7\nModel accuracy: 87.50%"
    )


def test_multilabel_thresholds_default_to_95_percent_of_probabilities() -> None:
    # Twenty positives scoring 0.01 ... 0.20 (probabilities, not logits): 95% of them
    # is nineteen, so the threshold is the nineteenth highest, 0.02.
    scores = np.arange(1, 21, dtype=np.float64)[:, None] / 100
    assert multilabel_thresholds(scores, np.ones((20, 1), dtype=np.int64)).tolist() == [0.02]


def test_bootstrap_defaults_are_a_thousand_resamples_seeded_zero() -> None:
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 1, 0])
    default = bootstrap_ci_from(probs, labels, metrics=["accuracy"])
    assert default.n_resamples == 1000
    assert default.confidence == 0.95
    explicit = bootstrap_ci_from(
        probs, labels, metrics=["accuracy"], n_resamples=1000, confidence=0.95, seed=0, positive=1
    )
    assert default.to_dict() == explicit.to_dict()


def test_bootstrap_ci_passes_every_setting_on() -> None:
    model = _small_model()
    data = digitrec.ImageDataset(_images(24, 5), torch.arange(24) % 3)
    settings: dict[str, object] = {
        "metrics": ["ppv", "balanced_accuracy"],
        "positive": 2,
        "confidence": 0.8,
        "seed": 11,
        "n_resamples": 40,
    }
    direct = bootstrap_ci(model, data, **settings)  # type: ignore[arg-type]
    probs = probabilities(model, data, None, 1024)
    assert direct.to_dict() == bootstrap_ci_from(probs, data.labels, **settings).to_dict()  # type: ignore[arg-type]
    assert (direct.positive, direct.confidence, list(direct.intervals)) == (
        2,
        0.8,
        ["ppv", "balanced_accuracy"],
    )
    assert bootstrap_ci(model, data, metrics=["accuracy"]).n_resamples == 1000


def test_report_prints_the_ood_line_exactly() -> None:
    from .test_mutation_kills import _report

    lines = str(_report(ood_auroc=0.98765, ood_fpr_at_95_tpr=0.05)).splitlines()
    assert lines[7] == "out-of-distribution set: AUROC 0.9877, accepted at 95% TPR 5.00%"
    assert lines[8] == "confusion matrix (rows actual, columns predicted):"
    lines = str(_report(ood_auroc=0.5, ood_fpr_at_95_tpr=None)).splitlines()
    assert lines[7] == "out-of-distribution set: AUROC 0.5000, accepted at 95% TPR 0.00%"


def test_threshold_messages_name_the_split() -> None:
    model = _small_model()
    bad = digitrec.ImageDataset(_images(4, 6), torch.tensor([0, 1, 5, 1]))
    assert _error(digitrec.evaluation.choose_threshold, model, bad) == (
        "val has label 5, but the model has 3 classes (labels 0 to 2)"
    )
    assert _error(measure_threshold, model, bad, 0.5) == (
        "data has label 5, but the model has 3 classes (labels 0 to 2)"
    )
    good = digitrec.ImageDataset(_images(4, 6), torch.tensor([0, 1, 2, 1]))
    assert _error(measure_threshold, model, good, 0.5, positive=-1) == (
        "positive must be a non-negative integer, got -1"
    )
    probs = np.full((3, 2), 0.5)
    assert _error(bootstrap_ci_from, probs, np.array([0, 1, 1]), positive=-1) == (
        "positive must be a non-negative integer, got -1"
    )
    assert _error(bootstrap_ci_from, probs, np.array([0, 1, 1]), seed=-1) == (
        "seed must be a non-negative integer, got -1"
    )


@pytest.mark.parametrize(
    "measure", [digitrec.evaluate_accuracy, digitrec.evaluate], ids=["accuracy", "evaluate"]
)
def test_evaluation_prepares_or_refuses_other_sizes_as_asked(measure: Any) -> None:
    model = _small_model()
    large = digitrec.ImageDataset(
        torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2, 1])
    )
    assert _error(measure, model, large, prepare=False) == (
        "data images of shape (C, H, W) = (1, 28, 28) do not fit the model, which expects (1, 8, 8)"
    )
    assert measure(model, large).total == 4  # prepared
    assert _error(measure, model, large, batch_size=0) == (
        "batch_size must be a positive integer, got 0"
    )


def test_evaluate_multilabel_defaults_to_one_half_and_names_batch_size() -> None:
    model = _small_model(2, task="multilabel")
    data = digitrec.ImageDataset(_images(6, 7), torch.tensor([[0, 1], [1, 1], [1, 0]] * 2))
    report = digitrec.evaluation.evaluate_multilabel(model, data)
    assert report.thresholds.tolist() == [0.5, 0.5]
    assert _error(digitrec.evaluation.evaluate_multilabel, model, data, batch_size=0) == (
        "batch_size must be a positive integer, got 0"
    )


def test_choose_threshold_reports_its_point_on_val_and_defaults_to_95_percent() -> None:
    model = _small_model()
    data = digitrec.ImageDataset(_images(40, 8), torch.arange(40) % 3)
    point = digitrec.evaluation.choose_threshold(model, data)
    assert (point.positive, point.target_sensitivity) == (1, 0.95)
    scores = probabilities(model, data, None, 1024)[:, 1]
    assert point.threshold == threshold_for_sensitivity(scores, data.labels == 1, 0.95)
    # Its figures are those the threshold gives on val, measured independently.
    again = measure_threshold(model, data, point.threshold, positive=1)
    assert (point.sensitivity, point.specificity, point.positives, point.negatives) == (
        again.sensitivity,
        again.specificity,
        again.positives,
        again.negatives,
    )
    assert (point.positives, point.negatives) == (13, 27)


def test_threshold_settings_messages_are_exact() -> None:
    assert _error(threshold_for_sensitivity, [0.1], [1], 1.5) == (
        "sensitivity must be a finite number in (0, 1], got 1.5"
    )
    model = _small_model()
    data = digitrec.ImageDataset(_images(4, 9), torch.tensor([0, 1, 2, 1]))
    assert _error(measure_threshold, model, data, "high") == (
        "threshold must be a finite number, got 'high'"
    )


def test_multilabel_logits_flag_must_be_a_bool() -> None:
    assert _error(multilabel_metrics, np.array([[0.5]]), np.array([[1]]), logits="yes") == (
        "logits must be True or False, got 'yes'"
    )


def test_bootstrap_ci_messages_name_the_data_and_batch_size() -> None:
    model = _small_model()
    bad = digitrec.ImageDataset(_images(4, 10), torch.tensor([0, 1, 5, 1]))
    with pytest.raises(InvalidInputError) as caught:
        bootstrap_ci(model, bad)
    assert str(caught.value) == "data has label 5, but the model has 3 classes (labels 0 to 2)"
    good = digitrec.ImageDataset(_images(4, 10), torch.tensor([0, 1, 2, 1]))
    with pytest.raises(InvalidInputError) as caught:
        bootstrap_ci(model, good, batch_size=0)
    assert str(caught.value) == "batch_size must be a positive integer, got 0"


def test_probabilities_divide_the_logits_by_the_temperature() -> None:
    model = _small_model()
    data = digitrec.ImageDataset(_images(9, 11), torch.arange(9) % 3)
    # softmax(log softmax(z) / T) == softmax(z / T): the log-probabilities at
    # temperature 1 stand in for the logits.
    log_probs = torch.log(probabilities(model, data, None, 4))
    model.temperature.fill_(2.0)
    try:
        hot = probabilities(model, data, None, 4)
    finally:
        model.temperature.fill_(1.0)
    assert torch.allclose(hot, torch.softmax(log_probs / 2.0, dim=1), atol=1e-12)


def test_calibrate_names_val_in_its_messages() -> None:
    bad = digitrec.ImageDataset(_images(4, 12), torch.tensor([0, 1, 5, 1]))
    assert _error(digitrec.calibrate, _small_model(), bad) == (
        "val has label 5, but the model has 3 classes (labels 0 to 2)"
    )
    good = digitrec.ImageDataset(_images(4, 12), torch.tensor([0, 1, 2, 1]))
    assert _error(digitrec.calibrate, _small_model(), good, batch_size=0) == (
        "batch_size must be a positive integer, got 0"
    )


def test_bootstrap_balanced_accuracy_leaves_out_absent_classes() -> None:
    # Three classes, none of class 2: the mean of the recalls of classes 0 and 1.
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    labels = np.array([0, 1, 1, 1])  # class 0: 1 of 1 found; class 1: 1 of 3
    report = bootstrap_ci_from(probs, labels, metrics=["balanced_accuracy"], n_resamples=10)
    assert report["balanced_accuracy"].estimate == pytest.approx((1.0 + 1 / 3) / 2, abs=1e-15)
    # One image is enough data.
    one = bootstrap_ci_from(probs[:1], labels[:1], metrics=["accuracy"], n_resamples=5)
    assert (one["accuracy"].estimate, one["accuracy"].low, one["accuracy"].high) == (1.0, 1.0, 1.0)
