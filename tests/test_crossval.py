"""Cross-validation: a fresh model per fold, no patient on both sides, t-intervals over folds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import digitrec
from digitrec.crossval import cross_validate, t_quantile


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30])
@pytest.mark.parametrize("probability", [0.975, 0.95, 0.9, 0.05])
def test_t_quantile_matches_scipy(df: int, probability: float) -> None:
    assert t_quantile(probability, df) == pytest.approx(stats.t.ppf(probability, df), abs=1e-6)


def binary(n: int) -> digitrec.ImageDataset:
    data = digitrec.load_mnist("train")[:n]
    return digitrec.ImageDataset(data.images, (data.labels == 1).long(), ["other", "one"])


def test_cross_validate_by_patient_with_calibration() -> None:
    data = binary(600).with_groups(np.arange(600) // 3)
    built: list[digitrec.DigitClassifier] = []

    def make() -> digitrec.DigitClassifier:
        built.append(digitrec.DigitClassifier(num_classes=2, seed=len(built)))
        return built[-1]

    cv = cross_validate(make, data, k=3, seed=0, calibration_size=0.2, trainer_kwargs={"epochs": 2})
    assert len(built) == 3
    assert len({id(model) for model in built}) == 3
    assert sum(report.total for report in cv.reports) == 600
    assert all(180 <= report.total <= 220 for report in cv.reports)
    assert all(float(model.temperature) != 1.0 for model in built)
    accuracy = cv.per_fold["accuracy"]
    assert accuracy == [report.accuracy for report in cv.reports]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(accuracy), scale=stats.sem(accuracy))
    summary = cv.summary["accuracy"]
    assert summary.estimate == pytest.approx(np.mean(accuracy))
    assert (summary.low, summary.high) == pytest.approx((low, high), abs=1e-6)
    assert {"sensitivity", "specificity", "auroc", "ece"} <= cv.summary.keys()
    assert "3-fold cross-validation" in str(cv)
    assert cv.to_dict()["summary"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracy))


def test_cross_validate_refuses_a_factory_that_is_not_a_model() -> None:
    with pytest.raises(digitrec.InvalidTypeError, match="make_model must return"):
        cross_validate(lambda: "model", binary(40), k=2)  # type: ignore[arg-type,return-value]
    with pytest.raises(digitrec.InvalidInputError, match="confidence"):
        cross_validate(lambda: digitrec.DigitClassifier(), binary(40), confidence=1.5)
