"""The one road from raw images to a model: what is prepared, what passes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec


@pytest.fixture(scope="module")
def digit_model(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, epochs=2, progress=False).fit(mnist_train[:6000])
    return model


def test_training_on_mnist_records_digit_preparation(
    digit_model: digitrec.DigitClassifier, tmp_path: Path
) -> None:
    assert digit_model.config.prepare == "digits"
    other = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    data = digitrec.ImageDataset.from_arrays(np.zeros((64, 8, 8), np.uint8), np.arange(64) % 2)
    digitrec.Trainer(other, epochs=1, progress=False).fit(data)
    assert other.config.prepare == "resize"
    saved = digitrec.save(digit_model, tmp_path / "m.safetensors")
    assert digitrec.load(saved).config.prepare == "digits"
    assert digitrec.read_metadata(saved)["config"]["prepare"] == "digits"


def test_arrays_that_fit_pass_through_unchanged(
    digit_model: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    test = mnist_test[:2000]
    plain = digitrec.predict(digit_model, test.images, prepare=False)
    assert torch.equal(digitrec.predict(digit_model, test.images), plain)
    assert torch.equal(digitrec.predict(digit_model, test), plain)
    forced = digitrec.predict(digit_model, test.images, prepare=True)
    # Preparing already-framed digits changes a few answers at most.
    assert (forced == plain).float().mean() > 0.98


def test_raw_photos_are_prepared_by_default(
    digit_model: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    from PIL import Image

    image, label = mnist_test[0]
    # Dark ink on white paper, three times larger, off-centre: nothing like MNIST.
    paper = np.full((90, 110), 240, np.uint8)
    ink = 255 - np.kron(image[0].numpy(), np.ones((3, 3), np.uint8))
    paper[2:86, 20:104] = np.minimum(paper[2:86, 20:104], ink)
    path = tmp_path / "photo.png"
    Image.fromarray(paper).save(path)
    assert digitrec.get_predicted_label(digit_model, path) == label
    assert digitrec.get_predicted_label(digit_model, paper) == label
    assert int(digitrec.predict(digit_model, [path, path.read_bytes()])[1]) == label
    [answer] = digitrec.classify(digit_model, [str(path)])
    assert answer.class_index == label
    assert answer.label == str(label)
    with pytest.raises(digitrec.InvalidInputError, match="do not fit the model"):
        digitrec.predict(digit_model, [paper], prepare=False)


def test_evaluate_prepares_data_of_another_size(
    digit_model: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    test = mnist_test[:500]
    bigger = digitrec.ImageDataset.from_arrays(
        torch.nn.functional.interpolate(test.images.float() / 255, size=56).clamp(0, 1),
        test.labels,
    )
    plain = digitrec.evaluate_accuracy(digit_model, test).accuracy
    assert digitrec.evaluate_accuracy(digit_model, bigger).accuracy > plain - 0.03
    with pytest.raises(digitrec.InvalidInputError, match="do not fit the model"):
        digitrec.evaluate_accuracy(digit_model, bigger, prepare=False)


def test_non_digit_models_resize_with_padding() -> None:
    model = digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=2, seed=0)
    model = model.eval()
    assert model.config.preparation == "resize"
    probabilities = digitrec.predict_proba(model, [np.zeros((40, 20)), np.ones((5, 9, 3))])
    assert probabilities.shape == (2, 2)
    with pytest.raises(digitrec.InvalidInputError, match="prepare must be True, False or None"):
        digitrec.predict(model, [np.zeros((16, 16))], prepare="yes")  # type: ignore[arg-type]
