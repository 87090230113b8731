from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np
import pytest
import torch

import digitrec
from digitrec import ExplainMethod, explain

requires_captum = pytest.mark.skipif(
    importlib.util.find_spec("captum") is None, reason='needs pip install "digitrec[explain]"'
)

METHODS = ("integrated_gradients", "saliency", "occlusion")


@pytest.fixture(scope="module")
def mlp(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, epochs=2, progress=False).fit(mnist_train[:10000])
    return model


@pytest.fixture(scope="module")
def cnn(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier("cnn", seed=0)
    # No augmentation and one thread: a few seconds, and about 90% on the test images.
    trainer = digitrec.Trainer(model, epochs=1, augment=False, num_threads=1, progress=False)
    trainer.fit(mnist_train[:5000])
    return model


@pytest.fixture(params=["mlp", "cnn"])
def trained(request: pytest.FixtureRequest) -> digitrec.DigitClassifier:
    model: digitrec.DigitClassifier = request.getfixturevalue(request.param)
    return model


@pytest.fixture(scope="module")
def pixels(mnist_test: digitrec.ImageDataset) -> torch.Tensor:
    """50 test images as float pixels in [0, 1]."""
    return mnist_test.images[:50].to(torch.float32) / 255.0


def _logits(model: digitrec.DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits: torch.Tensor = model(images)
    model.train(was_training)
    return logits


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks with ties averaged, as Spearman's correlation needs."""
    array = values.double().numpy()
    order = np.argsort(array, kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(len(array))
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return torch.from_numpy(sums[inverse] / counts[inverse])


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([_ranks(a), _ranks(b)]))[0, 1])


# --- Integrated gradients: completeness -------------------------------------------


@requires_captum
@pytest.mark.parametrize(("arch", "baseline"), [("mlp", None), ("mlp", 0.2), ("cnn", None)])
def test_integrated_gradients_are_complete(
    request: pytest.FixtureRequest, pixels: torch.Tensor, arch: str, baseline: float | None
) -> None:
    # Sundararajan et al.: the attributions add up to F(x) - F(baseline) for the target.
    trained: digitrec.DigitClassifier = request.getfixturevalue(arch)
    images = pixels[:10]
    attributions = explain(trained, images, baseline=baseline, n_steps=200)
    start = torch.full_like(images, baseline or 0.0)
    targets = _logits(trained, images).argmax(dim=1)
    difference = (_logits(trained, images) - _logits(trained, start)).gather(1, targets[:, None])
    error = (attributions.sum(dim=(1, 2, 3)) - difference[:, 0]).abs()
    relative = error / difference[:, 0].abs()
    assert float(relative.max()) < 0.01, f"completeness error up to {float(relative.max()):.4f}"


# --- Faithfulness: deleting the most attributed pixels hurts most ------------------


@requires_captum
@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_deleting_top_pixels_hurts_more_than_random_ones(
    trained: digitrec.DigitClassifier, pixels: torch.Tensor, method: ExplainMethod
) -> None:
    k = 50
    # Fewer images for the CNN, whose occlusion maps take 169 forward passes per image.
    pixels = pixels if trained.arch == "mlp" else pixels[:30]
    predicted = _logits(trained, pixels).argmax(dim=1)
    attributions = explain(trained, pixels, method=method).flatten(1)
    top = pixels.flatten(1).clone().scatter_(1, attributions.topk(k, dim=1).indices, 0.0)
    # Random pixels from the ink only: deleting background pixels would change nothing.
    generator = torch.Generator().manual_seed(0)
    random = pixels.flatten(1).clone()
    for row in random:
        ink = row.nonzero()[:, 0]
        row[ink[torch.randperm(len(ink), generator=generator)[:k]]] = 0.0

    def probability(images: torch.Tensor) -> torch.Tensor:
        probs = digitrec.predict_proba(trained, images.view_as(pixels))
        return probs.gather(1, predicted[:, None])[:, 0]

    before = probability(pixels.flatten(1))
    drop_top = float((before - probability(top)).mean())
    drop_random = float((before - probability(random)).mean())
    assert drop_top > drop_random + 0.3, (drop_top, drop_random)
    assert drop_top > 2 * drop_random, (drop_top, drop_random)


# --- Sanity check (Adebayo et al. 2018): attributions depend on the weights --------


@requires_captum
@pytest.mark.parametrize("method", METHODS)
def test_randomised_model_gets_different_attributions(
    trained: digitrec.DigitClassifier, pixels: torch.Tensor, method: ExplainMethod
) -> None:
    images = pixels[:20]
    targets = _logits(trained, images).argmax(dim=1)
    random = digitrec.DigitClassifier.from_config(trained.config, seed=123)
    ours = explain(trained, images, target=targets, method=method).flatten(1)
    theirs = explain(random, images, target=targets, method=method).flatten(1)
    # Compared on the ink: on the black background integrated gradients is zero for any
    # model (the input equals the baseline there), which would inflate the correlation.
    ink = images.flatten(1) > 0
    correlations = [
        _spearman(ours[i][ink[i]].abs(), theirs[i][ink[i]].abs()) for i in range(len(images))
    ]
    mean = float(np.mean(correlations))
    assert mean < 0.5, f"mean Spearman correlation {mean:.3f}"


# --- Shapes, dtypes, targets --------------------------------------------------------


@requires_captum
@pytest.mark.parametrize("method", METHODS)
def test_shapes_for_batch_single_and_reduced_channels(
    mlp: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset, method: ExplainMethod
) -> None:
    batch = mnist_test.images[:3]
    result = explain(mlp, batch, method=method)
    assert result.shape == (3, 1, 28, 28)
    assert result.dtype == torch.float32
    assert result.device == torch.device("cpu")
    single = explain(mlp, batch[1], method=method)
    assert single.shape == (1, 28, 28)
    torch.testing.assert_close(single, result[1], atol=1e-5, rtol=1e-4)
    as_hw = explain(mlp, batch[1, 0].numpy(), method=method)
    torch.testing.assert_close(as_hw, single)
    from_dataset = explain(mlp, mnist_test[:3], method=method)
    torch.testing.assert_close(from_dataset, result)
    reduced = explain(mlp, batch, method=method, reduce_channels=True)
    assert reduced.shape == (3, 1, 28, 28)
    assert explain(mlp, batch[0], reduce_channels=True).shape == (1, 28, 28)


@requires_captum
@pytest.mark.parametrize("method", METHODS)
def test_rgb_images_and_channel_reduction(method: ExplainMethod) -> None:
    model = digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=2, seed=0)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    full = explain(model, images, method=method)
    assert full.shape == (2, 3, 16, 16)
    reduced = explain(model, images, method=method, reduce_channels=True)
    assert reduced.shape == (2, 1, 16, 16)
    torch.testing.assert_close(reduced, full.sum(dim=1, keepdim=True))
    channels_last = explain(model, images.permute(0, 2, 3, 1).numpy(), method=method)
    torch.testing.assert_close(channels_last, full)
    assert explain(model, images[0], method=method).shape == (3, 16, 16)


@requires_captum
def test_uint8_pixels_are_scaled_to_floats(
    mlp: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    raw = mnist_test.images[:4]
    assert raw.dtype == torch.uint8
    as_uint8 = explain(mlp, raw)
    as_float = explain(mlp, raw.double() / 255.0)
    torch.testing.assert_close(as_uint8, as_float)
    # Attributions are per 0-1 pixel, not per 0-255 level: the sum matches logit differences.
    assert float(as_uint8.abs().sum(dim=(1, 2, 3)).max()) < 1000


@requires_captum
def test_target_defaults_to_prediction_and_accepts_sequences(
    mlp: digitrec.DigitClassifier, pixels: torch.Tensor
) -> None:
    images = pixels[:5]
    predicted = digitrec.predict(mlp, images)
    default = explain(mlp, images)
    torch.testing.assert_close(default, explain(mlp, images, target=predicted))
    torch.testing.assert_close(default, explain(mlp, images, target=predicted.tolist()))
    torch.testing.assert_close(default, explain(mlp, images, target=predicted.numpy()))
    other = (predicted + 1) % 10
    assert not torch.allclose(default, explain(mlp, images, target=other))
    same = explain(mlp, images, target=3)
    torch.testing.assert_close(same, explain(mlp, images, target=[3] * 5))
    torch.testing.assert_close(same[2], explain(mlp, images[2], target=np.int64(3)))


@requires_captum
@pytest.mark.parametrize("method", METHODS)
def test_internal_batch_size_bounds_every_pass(
    mlp: digitrec.DigitClassifier, pixels: torch.Tensor, method: ExplainMethod
) -> None:
    sizes: list[int] = []
    hook = mlp.network.register_forward_pre_hook(lambda _, args: sizes.append(args[0].shape[0]))
    try:
        bounded = explain(mlp, pixels[:12], method=method, n_steps=40, internal_batch_size=16)
    finally:
        hook.remove()
    assert sizes
    assert max(sizes) <= 16
    default = explain(mlp, pixels[:12], method=method, n_steps=40)
    torch.testing.assert_close(bounded, default, atol=1e-4, rtol=1e-3)


@requires_captum
def test_empty_batch(mlp: digitrec.DigitClassifier) -> None:
    assert explain(mlp, torch.zeros(0, 1, 28, 28)).shape == (0, 1, 28, 28)


@requires_captum
def test_baseline_forms(mlp: digitrec.DigitClassifier, pixels: torch.Tensor) -> None:
    images = pixels[:3]
    black = explain(mlp, images)
    torch.testing.assert_close(black, explain(mlp, images, baseline=0.0))
    torch.testing.assert_close(black, explain(mlp, images, baseline=torch.zeros(1, 28, 28)))
    torch.testing.assert_close(
        black, explain(mlp, images, baseline=torch.zeros(3, 1, 28, 28, dtype=torch.uint8))
    )
    grey = explain(mlp, images, baseline=torch.full((1, 28, 28), 128, dtype=torch.uint8))
    torch.testing.assert_close(grey, explain(mlp, images, baseline=128 / 255))
    # Integrated gradients from the image itself: nothing changes, nothing is attributed.
    assert float(explain(mlp, images, baseline=images).abs().max()) == 0.0


# --- Modes and devices -----------------------------------------------------------


@requires_captum
@pytest.mark.parametrize("method", METHODS)
def test_modes_are_restored_and_no_parameter_gradient_is_left(
    cnn: digitrec.DigitClassifier, pixels: torch.Tensor, method: ExplainMethod
) -> None:
    assert isinstance(cnn.network, torch.nn.Sequential)
    batch_norm = cnn.network[1]
    assert isinstance(batch_norm, torch.nn.BatchNorm2d)
    cnn.train()
    batch_norm.eval()  # a mixed state: one BatchNorm frozen
    before = [module.training for module in cnn.modules()]
    assert batch_norm.running_mean is not None
    running_mean = batch_norm.running_mean.clone()
    grads = [None if p.grad is None else p.grad.clone() for p in cnn.parameters()]
    try:
        result = explain(cnn, pixels[:4], method=method)
        assert [module.training for module in cnn.modules()] == before
    finally:
        cnn.eval()
    # Eval mode inside: the BatchNorm statistics are used, not updated, and a batch of
    # one gets the same attribution as inside the batch.
    torch.testing.assert_close(batch_norm.running_mean, running_mean)
    torch.testing.assert_close(
        explain(cnn, pixels[2], method=method),
        result[2],
        atol=1e-5,
        rtol=1e-4,
    )
    for parameter, grad in zip(cnn.parameters(), grads, strict=True):
        if grad is None:
            assert parameter.grad is None
        else:
            torch.testing.assert_close(parameter.grad, grad, rtol=0, atol=0)


@requires_captum
def test_works_under_inference_and_no_grad_modes(
    mlp: digitrec.DigitClassifier, pixels: torch.Tensor
) -> None:
    expected = explain(mlp, pixels[:2])
    with torch.inference_mode():
        inside = explain(mlp, pixels[:2].clone())
    torch.testing.assert_close(inside, expected)
    with torch.no_grad():
        torch.testing.assert_close(explain(mlp, pixels[:2]), expected)


@requires_captum
def test_device_none_uses_the_models_device(
    mlp: digitrec.DigitClassifier, pixels: torch.Tensor
) -> None:
    result = explain(mlp, pixels[:2])
    assert next(mlp.parameters()).device == torch.device("cpu")
    torch.testing.assert_close(result, explain(mlp, pixels[:2], device="cpu"))
    if torch.cuda.is_available():
        on_gpu = digitrec.DigitClassifier.from_config(mlp.config).to("cuda")
        on_gpu.load_state_dict(mlp.state_dict())
        torch.testing.assert_close(explain(on_gpu, pixels[:2]), result, atol=1e-4, rtol=1e-3)
        assert next(on_gpu.parameters()).is_cuda
    else:
        with pytest.raises(digitrec.DeviceUnavailableError):
            explain(mlp, pixels[:2], device="cuda")


# --- Errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "lime"}, digitrec.InvalidInputError, "'integrated_gradients'.*'lime'"),
        ({"target": 10}, digitrec.InvalidInputError, "0 to 9, got 10"),
        ({"target": -1}, digitrec.InvalidInputError, "0 to 9, got -1"),
        ({"target": [1, 2]}, digitrec.InvalidInputError, r"expected shape \(3,\), got \(2,\)"),
        ({"target": [0.5, 1, 2]}, digitrec.InvalidTypeError, "integers"),
        ({"target": "7"}, digitrec.InvalidTypeError, "got str"),
        ({"target": True}, digitrec.InvalidTypeError, "got bool"),
        ({"n_steps": 0}, digitrec.InvalidInputError, "n_steps must be a positive integer"),
        ({"internal_batch_size": 0}, digitrec.InvalidInputError, "internal_batch_size"),
        ({"baseline": 1.5}, digitrec.InvalidInputError, r"\[0, 1\], got 1.5"),
        ({"baseline": "black"}, digitrec.InvalidTypeError, "got str"),
        (
            {"baseline": torch.zeros(1, 14, 14)},
            digitrec.InvalidInputError,
            r"\(1, 28, 28\).*got \(1, 14, 14\)",
        ),
        ({"reduce_channels": 1}, digitrec.InvalidTypeError, "reduce_channels must be a bool"),
        ({"device": "tpu"}, digitrec.InvalidInputError, "device must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    model = digitrec.DigitClassifier(seed=0)
    with pytest.raises(error, match=message):
        explain(model, torch.zeros(3, 1, 28, 28), **kwargs)


def test_bad_images_and_models() -> None:
    model = digitrec.DigitClassifier(seed=0)
    with pytest.raises(digitrec.InvalidTypeError, match="DigitClassifier, got Sequential"):
        explain(torch.nn.Sequential(), torch.zeros(1, 28, 28))  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match=r"\(1, 32, 32\).*expects \(1, 28, 28\)"):
        explain(model, torch.zeros(2, 1, 32, 32))
    with pytest.raises(digitrec.InvalidInputError, match=r"got shape \(5, 28, 28\)"):
        explain(model, torch.zeros(5, 28, 28))  # three dimensions are one image
    with pytest.raises(digitrec.InvalidInputError, match=r"\[0, 1\]"):
        explain(model, torch.full((1, 28, 28), 255.0))
    with pytest.raises(digitrec.InvalidTypeError, match="int64"):
        explain(model, torch.zeros(1, 28, 28, dtype=torch.int64))
    with pytest.raises(digitrec.InvalidTypeError, match="for one image must be an int"):
        explain(model, torch.zeros(1, 28, 28), target=[1])


def test_missing_captum_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(digitrec.MissingDependencyError, match=r'pip install "digitrec\[explain\]"'):
        explain(digitrec.DigitClassifier(seed=0), torch.zeros(1, 28, 28))
