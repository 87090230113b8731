from __future__ import annotations

import pytest
import torch

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
