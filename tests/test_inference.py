from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import digitrec


@pytest.fixture(scope="module")
def trained(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier(seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(mnist_train[:5000])
    return model


@pytest.fixture(scope="module")
def trained_cnn(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    """A CNN (BatchNorm) trained briefly: its running statistics differ from a batch's."""
    model = digitrec.DigitClassifier("cnn", seed=0)
    digitrec.Trainer(model, epochs=1, progress=False).fit(mnist_train[:1000])
    return model


def _modes(model: torch.nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def _reference_proba(model: digitrec.DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """Probabilities computed without digitrec's inference code: forward in eval mode.

    ``images`` is an ``(N, C, H, W)`` batch as the network takes it. The model's modes
    are put back afterwards.
    """
    modes = _modes(model)
    model.eval()
    try:
        with torch.no_grad():
            logits = model(images)
    finally:
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode
    return torch.softmax(logits.double() / float(model.temperature), dim=1).float()


def test_single_image_layouts_agree(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    image, label = mnist_test[0]
    plane = image[0]
    variants: list[object] = [
        image,
        plane,
        plane.unsqueeze(-1),
        plane.numpy(),
        plane.numpy()[:, :, None],
        plane.float() / 255,
        (plane.numpy() / 255.0).astype(np.float64),
    ]
    labels = {digitrec.get_predicted_label(trained, variant) for variant in variants}
    assert labels == {label} == {7}


def test_pil_images(trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset) -> None:
    image, label = mnist_test[1]
    gray = Image.fromarray(image[0].numpy())
    assert digitrec.get_predicted_label(trained, gray) == label
    assert digitrec.get_predicted_label(trained, gray.convert("RGB")) == label
    # A model of RGB images sees a grayscale image as three equal channels.
    rgb_model = digitrec.DigitClassifier("cnn", input_shape=(3, 28, 28), seed=0)
    expected = int(_reference_proba(rgb_model, image.expand(3, 28, 28)[None]).argmax())
    assert digitrec.get_predicted_label(rgb_model, gray) == expected
    other = digitrec.DigitClassifier("cnn", input_shape=(3, 28, 28), seed=0)
    assert digitrec.get_predicted_label(other, gray.convert("RGB")) == expected


@settings(max_examples=40, deadline=None)
@given(pixels=hnp.arrays(np.uint8, (28, 28)))
def test_single_label_matches_batch_prediction(pixels: np.ndarray) -> None:
    model = _shared_model()
    single = digitrec.get_predicted_label(model, pixels)
    batch = digitrec.predict(model, pixels[None])
    assert single == int(batch[0])
    reference = _reference_proba(model, torch.from_numpy(pixels)[None, None])
    assert single == int(reference.argmax())


_MODEL: list[digitrec.DigitClassifier] = []


def _shared_model() -> digitrec.DigitClassifier:
    if not _MODEL:
        _MODEL.append(digitrec.DigitClassifier(seed=0))
    return _MODEL[0]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 9),
    layout=st.sampled_from(["NHW", "NCHW", "NHWC"]),
    as_float=st.booleans(),
    batch_size=st.integers(1, 8),
)
def test_batch_outputs(n: int, layout: str, as_float: bool, batch_size: int) -> None:
    model = _shared_model()
    images = torch.randint(
        0, 256, (n, 28, 28), generator=torch.Generator().manual_seed(n), dtype=torch.uint8
    )
    shaped = {"NHW": images, "NCHW": images[:, None], "NHWC": images[..., None]}[layout]
    batch = shaped.float() / 255 if as_float else shaped
    probs = digitrec.predict_proba(model, batch, batch_size=batch_size)
    labels = digitrec.predict(model, batch, batch_size=batch_size)
    assert probs.shape == (n, 10)
    assert probs.dtype == torch.float32
    assert labels.shape == (n,)
    assert labels.dtype == torch.int64
    assert bool(((probs >= 0) & (probs <= 1)).all())
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(n))
    assert torch.equal(probs.argmax(dim=1), labels)
    # The values themselves: the network's own forward pass on the (N, 1, H, W) batch.
    nchw = images[:, None]
    reference = _reference_proba(model, nchw.float() / 255 if as_float else nchw)
    torch.testing.assert_close(probs, reference)
    assert torch.equal(labels, reference.argmax(dim=1))


def test_predict_accepts_datasets(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    subset = mnist_test[:64]
    labels = digitrec.predict(trained, subset)
    assert torch.equal(labels, digitrec.predict(trained, subset.images))
    assert torch.equal(labels, _reference_proba(trained, subset.images).argmax(dim=1))
    assert int((labels == subset.labels).sum()) >= 52  # a trained model, not a constant


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (torch.zeros(1, 1, 28, 28), digitrec.InvalidInputError, "predict()"),
        (torch.zeros(32, 32), digitrec.InvalidInputError, r"\(1, 32, 32\).*\(1, 28, 28\)"),
        (torch.zeros(3, 28, 28), digitrec.InvalidInputError, r"\(3, 28, 28\)"),
        (torch.full((28, 28), 1.5), digitrec.InvalidInputError, r"\[0, 1\]"),
        (torch.full((28, 28), float("nan")), digitrec.InvalidInputError, "finite"),
        (torch.zeros(28, 28, dtype=torch.int32), digitrec.InvalidTypeError, "int32"),
        ([[0] * 28] * 28, digitrec.InvalidTypeError, "list"),
    ],
)
def test_bad_single_images(image: object, error: type[Exception], message: str) -> None:
    # prepare=False: images of another shape are refused instead of prepared.
    with pytest.raises(error, match=message):
        digitrec.get_predicted_label(_shared_model(), image, prepare=False)


def test_bad_batches_and_models() -> None:
    with pytest.raises(digitrec.InvalidInputError, match=r"\(1, 14, 14\)"):
        digitrec.predict(_shared_model(), torch.zeros(2, 14, 14), prepare=False)
    with pytest.raises(digitrec.InvalidTypeError, match="DigitClassifier"):
        digitrec.predict(torch.nn.Linear(784, 10), torch.zeros(2, 28, 28))  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match="batch_size"):
        digitrec.predict_proba(_shared_model(), torch.zeros(2, 28, 28), batch_size=0)


def test_restores_mode_and_grad(
    trained_cnn: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    images = mnist_test.images[:100]
    expected = _reference_proba(trained_cnn, images)  # eval mode: running statistics
    buffers = {name: tensor.clone() for name, tensor in trained_cnn.named_buffers()}
    trained_cnn.train()
    try:
        probs = digitrec.predict_proba(trained_cnn, images, batch_size=32)
        assert all(_modes(trained_cnn))
        assert torch.is_grad_enabled()
    finally:
        trained_cnn.eval()
    # Predicted in eval mode although the model was in train mode: BatchNorm used its
    # running statistics, and did not update them.
    torch.testing.assert_close(probs, expected)
    for name, tensor in trained_cnn.named_buffers():
        assert torch.equal(tensor, buffers[name]), name


def test_restores_mixed_module_modes(trained: digitrec.DigitClassifier) -> None:
    trained.eval()
    assert isinstance(trained.network, torch.nn.Sequential)
    trained.network[1].train()  # a user's mixed state: one layer in train mode
    digitrec.predict(trained, torch.zeros(2, 28, 28))
    assert [module.training for module in trained.modules()] == [
        module is trained.network[1] for module in trained.modules()
    ]
    trained.eval()


def test_prediction_from_several_threads_on_one_model_in_train_mode(
    trained_cnn: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    images = mnist_test.images[:200]
    trained_cnn.eval()
    expected_probs = digitrec.predict_proba(trained_cnn, images, batch_size=25)
    expected = expected_probs.argmax(dim=1)
    torch.testing.assert_close(expected_probs, _reference_proba(trained_cnn, images))
    # The test can tell: in train mode BatchNorm's batch statistics give other answers.
    in_train_mode = copy.deepcopy(trained_cnn).train()
    with torch.no_grad():
        assert int((in_train_mode(images).argmax(dim=1) != expected).sum()) >= 10
    buffers = {name: tensor.clone() for name, tensor in trained_cnn.named_buffers()}

    threads_count, rounds = 4, 5
    barrier = threading.Barrier(threads_count)
    results: dict[int, list[torch.Tensor]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=60)  # all start together, so that the calls overlap
            # Small batches: each call runs several forward passes, with the mode
            # switched for the whole call.
            results[index] = [
                digitrec.predict_proba(trained_cnn, images, batch_size=25) for _ in range(rounds)
            ]
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    trained_cnn.train()
    assert isinstance(trained_cnn.network, torch.nn.Sequential)
    trained_cnn.network[1].eval()  # a mixed state, which must come back as it was
    modes = _modes(trained_cnn)
    threads = [threading.Thread(target=work, args=(index,)) for index in range(threads_count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert _modes(trained_cnn) == modes
        assert sorted(results) == list(range(threads_count))
        for index, probs_list in results.items():
            assert len(probs_list) == rounds
            for probs in probs_list:
                assert torch.equal(probs.argmax(dim=1), expected), index
                torch.testing.assert_close(probs, expected_probs)
        # No forward pass ran in train mode: the running statistics are untouched.
        for name, tensor in trained_cnn.named_buffers():
            assert torch.equal(tensor, buffers[name]), name
    finally:
        trained_cnn.eval()


# --- abstention ---------------------------------------------------------------------------


def test_abstains_exactly_below_the_threshold(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    subset = mnist_test[:1000]
    probs = digitrec.predict_proba(trained, subset)
    confidence, labels = probs.max(dim=1)
    threshold = float(confidence.median())
    result = digitrec.predict_or_abstain(trained, subset, min_confidence=threshold)
    assert result.dtype == torch.int64
    sure = confidence >= threshold
    assert torch.equal(result[sure], labels[sure])
    assert bool((result[~sure] == digitrec.ABSTAINED).all())
    assert 400 <= int(sure.sum()) <= 600
    # Those it keeps are right more often than those it refers.
    kept_accuracy = (labels[sure] == subset.labels[sure]).float().mean()
    referred_accuracy = (labels[~sure] == subset.labels[~sure]).float().mean()
    assert kept_accuracy > referred_accuracy


def test_abstention_extremes(
    trained: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    subset = mnist_test[:200]
    assert torch.equal(
        digitrec.predict_or_abstain(trained, subset, min_confidence=0.0),
        digitrec.predict(trained, subset),
    )
    never_sure = digitrec.predict_or_abstain(trained, subset, min_confidence=1.0)
    assert int((never_sure != digitrec.ABSTAINED).sum()) <= 5


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "high", True])
def test_abstention_rejects_bad_thresholds(threshold: object) -> None:
    with pytest.raises(
        digitrec.InvalidInputError, match=r"min_confidence must be a finite number in \[0, 1\]"
    ):
        digitrec.predict_or_abstain(
            _shared_model(),
            torch.zeros(2, 28, 28),
            min_confidence=threshold,  # type: ignore[arg-type]
        )


def test_predict_proba_applies_the_temperature() -> None:
    model = digitrec.DigitClassifier(seed=0)
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    plain = digitrec.predict_proba(model, images)
    model.temperature.fill_(4.0)
    soft = digitrec.predict_proba(model, images)
    assert torch.equal(plain.argmax(1), soft.argmax(1))
    assert bool((soft.max(1).values < plain.max(1).values).all())
    logits = torch.log(plain)
    torch.testing.assert_close(soft, torch.softmax(logits / 4.0, dim=1), rtol=1e-4, atol=1e-6)
