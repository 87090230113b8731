"""Medical-imaging training: class weights, the balanced sampler, validation metrics,
monitors, data-derived normalization, multilabel models and precision settings."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import digitrec
from digitrec.training import _metrics
from digitrec.training._fitting import epoch_order
from digitrec.training._objective import Objective, sample_weights


def _imbalanced(mnist_train: digitrec.ImageDataset) -> digitrec.ImageDataset:
    """Digits 0 and 1 only, nine 0s to each 1, as a two-class set."""
    data = mnist_train[:6000]
    zeros = torch.nonzero(data.labels == 0).flatten()[:450]
    ones = torch.nonzero(data.labels == 1).flatten()[:50]
    keep = torch.cat([zeros, ones]).sort().values
    return digitrec.ImageDataset(
        data.images[keep], (data.labels[keep] == 1).long(), class_names=["zero", "one"]
    )


def test_class_weights_config_is_checked_and_recorded() -> None:
    config = digitrec.TrainConfig(
        epochs=1, batch_size=8, optimizer="sgd", lr=0.1, class_weights=(1, 3)
    )
    assert config.class_weights == (1.0, 3.0)
    assert config.to_dict()["class_weights"] == [1.0, 3.0]
    assert config.to_dict()["sampler"] == "shuffle"
    assert config.to_dict()["precision"] == "fp32"
    balanced = digitrec.TrainConfig(
        epochs=1, batch_size=8, optimizer="sgd", lr=0.1, class_weights="balanced"
    )
    assert balanced.to_dict()["class_weights"] == "balanced"
    for bad in ("equal", (1.0,), (0.0, 0.0), (1.0, -1.0)):
        with pytest.raises(digitrec.InvalidInputError, match=r"class_weights|class weight"):
            digitrec.TrainConfig(epochs=1, batch_size=8, optimizer="sgd", lr=0.1, class_weights=bad)  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match="sampler must be one of"):
        digitrec.TrainConfig(epochs=1, batch_size=8, optimizer="sgd", lr=0.1, sampler="random")  # type: ignore[arg-type]


def test_weighted_loss_is_each_images_loss_times_its_class_weight() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -1.0, 0.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2, 2, 1])
    weights = torch.tensor([0.5, 2.0, 3.0])
    by_hand = sum(
        float(weights[y]) * -math.log(float(torch.softmax(row, 0)[y]))
        for row, y in zip(logits, labels, strict=True)
    ) / len(labels)
    loss = Objective(multilabel=False, weights=weights)(logits, labels)
    assert float(loss) == pytest.approx(by_hand, rel=1e-6)
    assert float(Objective(multilabel=False)(logits, labels)) == pytest.approx(
        float(F.cross_entropy(logits, labels))
    )


def test_balanced_class_weights_change_training(mnist_train: digitrec.ImageDataset) -> None:
    data = _imbalanced(mnist_train)
    runs = {}
    for weights in (None, "balanced"):
        model = digitrec.DigitClassifier(num_classes=2, seed=0)
        trainer = digitrec.Trainer(
            model, epochs=1, batch_size=500, lr=1e-9, class_weights=weights, progress=False
        )
        runs[weights] = trainer.fit(data).train_loss[0]
    # With lr ~ 0 the weights barely move: the epoch's loss is the initial loss, weighted
    # n / (2 * count): 500 / 900 for the 450 zeros and 500 / 100 for the 50 ones.
    model = digitrec.DigitClassifier(num_classes=2, seed=0)
    model._set_normalization(*digitrec.training.pixel_stats(data))
    with torch.no_grad():
        losses = F.cross_entropy(model(data.images), data.labels, reduction="none")
    weight = torch.where(data.labels == 1, 500 / 100, 500 / 900)
    assert runs[None] == pytest.approx(float(losses.mean()), rel=1e-4)
    assert runs["balanced"] == pytest.approx(float((weight * losses).mean()), rel=1e-4)


def test_balanced_sampler_draws_classes_equally_and_repeatably(
    mnist_train: digitrec.ImageDataset,
) -> None:
    data = _imbalanced(mnist_train)  # 10% ones
    model = digitrec.DigitClassifier(num_classes=2)
    config = digitrec.TrainConfig(
        epochs=1, batch_size=8, optimizer="sgd", lr=0.1, sampler="balanced"
    )
    weights = sample_weights(config, model, data.labels)
    assert weights is not None

    def drawn(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        order = torch.cat(
            [epoch_order(len(data), weights, generator, torch.device("cpu")) for _ in range(4)]
        )
        return data.labels[order]

    labels = drawn(0)
    assert len(labels) == 4 * len(data)
    assert 0.45 < float(labels.float().mean()) < 0.55
    assert torch.equal(labels, drawn(0))
    assert not torch.equal(labels, drawn(1))
    shuffle = replace(config, sampler="shuffle")
    assert sample_weights(shuffle, model, data.labels) is None


def test_balanced_sampler_is_bit_identical_on_cpu(mnist_train: digitrec.ImageDataset) -> None:
    data = _imbalanced(mnist_train)

    def train() -> list[torch.Tensor]:
        model = digitrec.DigitClassifier(num_classes=2, seed=0)
        digitrec.Trainer(
            model,
            epochs=2,
            batch_size=64,
            sampler="balanced",
            class_weights="balanced",
            progress=False,
        ).fit(data)
        return list(model.state_dict().values())

    first, second = train(), train()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_history_records_val_loss_that_decreases_on_mnist(
    mnist_train: digitrec.ImageDataset,
) -> None:
    model = digitrec.DigitClassifier(seed=0)
    history = digitrec.Trainer(
        model,
        epochs=3,
        metrics=("accuracy", "auroc", "sensitivity@0.95specificity"),
        progress=False,
    ).fit(mnist_train[:4000], val=mnist_train[4000:5000])
    assert len(history.val_loss) == 3
    assert history.val_loss[-1] < history.val_loss[0]
    assert set(history.val_metrics) == {"auroc", "sensitivity@0.95specificity"}
    assert history.values("val_accuracy") == history.val_accuracy
    assert 0.9 < history.values("val_auroc")[-1] <= 1.0
    assert "val_loss" in str(history)
    assert "auroc" in str(history)
    with pytest.raises(digitrec.InvalidInputError, match="no values named 'val_f1'"):
        history.values("val_f1")
    # The val loss is the mean cross-entropy of the final model on the validation set.
    with torch.no_grad():
        logits = model.eval()(mnist_train[4000:5000].images)
    assert history.val_loss[-1] == pytest.approx(
        float(F.cross_entropy(logits, mnist_train[4000:5000].labels)), rel=1e-5
    )


def test_metrics_match_scikit_learn() -> None:
    sklearn = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 3, generator=generator)
    labels = torch.randint(0, 3, (300,), generator=generator)
    logits[torch.arange(300), labels] += 0.8
    probs = torch.softmax(logits.double(), 1).numpy()
    assert _metrics.auroc(logits, labels) == pytest.approx(
        sklearn.roc_auc_score(labels.numpy(), probs, multi_class="ovr", average="macro")
    )
    assert _metrics.balanced_accuracy(logits, labels) == pytest.approx(
        sklearn.balanced_accuracy_score(labels.numpy(), logits.argmax(1).numpy())
    )
    binary = labels.clamp(max=1)
    two = logits[:, :2]
    sens = _metrics.resolve_metrics(["sensitivity@0.9specificity"])["sensitivity@0.9specificity"]
    scores = torch.softmax(two.double(), 1)[:, 1]
    neg, pos = scores[binary == 0], scores[binary == 1]
    best = max(
        float((pos > t).double().mean()) for t in scores if float((neg <= t).double().mean()) >= 0.9
    )
    assert sens(two, binary) == pytest.approx(best)


def test_unknown_metrics_are_refused() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="metric names must be one of"):
        digitrec.Trainer(digitrec.DigitClassifier(), metrics=("f2",))
    with pytest.raises(digitrec.InvalidInputError, match="metric names must be one of"):
        digitrec.Trainer(digitrec.DigitClassifier(), metrics=("sensitivity@1.5specificity",))


def test_early_stopping_on_val_loss_restores_the_best_weights(
    mnist_train: digitrec.ImageDataset,
) -> None:
    best: dict[int, list[torch.Tensor]] = {}

    class Keep(digitrec.Callback):
        def on_epoch_end(self, trainer: object, history: digitrec.History) -> None:
            best[history.epochs] = [t.clone() for t in trainer.model.state_dict().values()]  # type: ignore[attr-defined]

    stop = digitrec.EarlyStopping(monitor="val_loss", patience=2)
    assert stop.mode == "min"
    model = digitrec.DigitClassifier(seed=0)
    # A large constant rate overfits 300 images quickly: the val loss turns up.
    history = digitrec.Trainer(
        model, epochs=30, lr=0.5, lr_schedule="constant", progress=False, callbacks=[Keep(), stop]
    ).fit(mnist_train[:300], val=mnist_train[300:800])
    assert stop.best_epoch == 1 + min(range(history.epochs), key=history.val_loss.__getitem__)
    assert stop.best_score == min(history.val_loss)
    assert stop.stopped_epoch == history.epochs < 30
    final = list(model.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(final, best[stop.best_epoch], strict=True))


def test_monitoring_an_unrecorded_name_is_refused(mnist_train: digitrec.ImageDataset) -> None:
    stop = digitrec.EarlyStopping(monitor="val_auroc")
    trainer = digitrec.Trainer(
        digitrec.DigitClassifier(seed=0), epochs=1, progress=False, callbacks=[stop]
    )
    with pytest.raises(digitrec.InvalidInputError, match="'val_auroc', which this fit"):
        trainer.fit(mnist_train[:200], val=mnist_train[200:300])
    with pytest.raises(digitrec.InvalidInputError, match="mode must be one of"):
        digitrec.EarlyStopping(mode="up")  # type: ignore[arg-type]


def test_checkpoint_saves_the_best_epoch_only(
    mnist_train: digitrec.ImageDataset, tmp_path: Path
) -> None:
    path = tmp_path / "best.safetensors"
    checkpoint = digitrec.Checkpoint(path, monitor="val_auroc", save_best_only=True)
    history = digitrec.Trainer(
        digitrec.DigitClassifier(seed=0),
        epochs=4,
        lr=0.5,
        lr_schedule="constant",
        metrics=["auroc"],
        progress=False,
        callbacks=[checkpoint],
    ).fit(mnist_train[:300], val=mnist_train[300:800])
    best = 1 + max(range(4), key=history.val_metrics["auroc"].__getitem__)
    assert digitrec.read_metadata(path)["epoch"] == best


def test_normalization_comes_from_the_training_data(mnist_train: digitrec.ImageDataset) -> None:
    mean, std = digitrec.training.pixel_stats(mnist_train)
    assert mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert std[0] == pytest.approx(0.3081, abs=1e-4)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(100, 200, (64, 3, 16, 16), dtype=torch.uint8, generator=generator)
    images[:, 1] //= 2
    data = digitrec.ImageDataset(images, torch.arange(64) % 2)
    mean, std = digitrec.training.pixel_stats(data)
    pixels = images.double() / 255
    assert mean == pytest.approx(tuple(pixels.mean(dim=(0, 2, 3)).tolist()))
    assert std == pytest.approx(tuple(pixels.std(dim=(0, 2, 3), unbiased=False).tolist()))
    model = digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=2, seed=0)
    assert model.config.mean is None
    digitrec.Trainer(model, epochs=1, progress=False).fit(data)
    assert model.config.mean == pytest.approx(mean)
    assert model.config.std == pytest.approx(std)
    # Bundled MNIST keeps MNIST's published numbers; explicit numbers are never replaced.
    mnist_model = digitrec.DigitClassifier(seed=0)
    digitrec.Trainer(mnist_model, epochs=1, progress=False).fit(mnist_train[:256])
    assert (mnist_model.config.mean, mnist_model.config.std) == (
        digitrec.MNIST_MEAN,
        digitrec.MNIST_STD,
    )
    fixed = digitrec.DigitClassifier(
        "cnn", input_shape=(3, 16, 16), num_classes=2, mean=0.5, std=0.2
    )
    digitrec.Trainer(fixed, epochs=1, progress=False).fit(data)
    assert (fixed.config.mean, fixed.config.std) == ((0.5,), (0.2,))


def _multilabel_dataset(images: torch.Tensor, labels: torch.Tensor) -> digitrec.ImageDataset:
    # ImageDataset holds (N,) labels today; until data/ accepts (N, L) 0/1 labels, build
    # one around a valid set and swap in the multilabel tensor.
    data = digitrec.ImageDataset(images, torch.zeros(len(images), dtype=torch.int64))
    data._labels = labels
    return data


def test_multilabel_training_and_predictions() -> None:
    # Three labels, each set by a bright quadrant: independent, several per image.
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (600, 3), generator=generator)
    images = torch.randint(0, 40, (600, 1, 16, 16), dtype=torch.uint8, generator=generator)
    for k, (rows, cols) in enumerate(
        [(slice(0, 8), slice(0, 8)), (slice(0, 8), slice(8, 16)), (slice(8, 16), slice(0, 8))]
    ):
        images[labels[:, k] == 1, :, rows, cols] += 150
    train = _multilabel_dataset(images[:500], labels[:500])
    val = _multilabel_dataset(images[500:], labels[500:])
    model = digitrec.DigitClassifier(
        "mlp", input_shape=(1, 16, 16), num_classes=3, task="multilabel", seed=0
    )
    # The loss is BCE with logits over the (N, L) targets, mean over labels and images.
    with torch.no_grad():
        logits = model(train.images[:10])
    assert float(Objective(multilabel=True)(logits, train.labels[:10])) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits, train.labels[:10].float()))
    )
    history = digitrec.Trainer(
        model,
        epochs=8,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        metrics=["auroc"],
        class_weights="balanced",
        progress=False,
    ).fit(train, val=val)
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] > 0.95
    assert history.val_metrics["auroc"][-1] > 0.98
    with torch.no_grad():
        probs = model.probabilities(model.eval()(val.images))
    assert probs.shape == (100, 3)
    assert bool(((probs > 0.5) == val.labels.bool()).float().mean() > 0.95)
    assert not torch.allclose(probs.sum(1), torch.ones(100))  # sigmoids, not a softmax


def test_multilabel_refusals() -> None:
    model = digitrec.DigitClassifier(input_shape=(1, 16, 16), num_classes=3, task="multilabel")
    wrong = _multilabel_dataset(
        torch.zeros(4, 1, 16, 16, dtype=torch.uint8), torch.zeros(4, 2, dtype=torch.int64)
    )
    with pytest.raises(digitrec.InvalidInputError, match=r"shape \(N, 3\)"):
        digitrec.Trainer(model, epochs=1, progress=False).fit(wrong)
    right = _multilabel_dataset(
        torch.zeros(4, 1, 16, 16, dtype=torch.uint8), torch.zeros(4, 3, dtype=torch.int64)
    )
    with pytest.raises(digitrec.InvalidInputError, match="sampler='balanced'"):
        digitrec.Trainer(model, epochs=1, sampler="balanced", progress=False).fit(right)
    with pytest.raises(digitrec.InvalidInputError, match="task must be one of"):
        digitrec.DigitClassifier(task="regression")  # type: ignore[arg-type]


def test_precision_settings_on_cpu(mnist_train: digitrec.ImageDataset) -> None:
    with pytest.raises(digitrec.InvalidInputError, match="precision='fp16' needs a CUDA device"):
        digitrec.Trainer(digitrec.DigitClassifier(), precision="fp16")
    model = digitrec.DigitClassifier("cnn", seed=0)
    history = digitrec.Trainer(
        model, epochs=1, precision="bf16", augment=False, progress=False
    ).fit(mnist_train[:256])
    assert math.isfinite(history.train_loss[0])


def test_streaming_from_host_memory_matches_on_cpu(mnist_train: digitrec.ImageDataset) -> None:
    # On the CPU both placements are the same memory; the setting is recorded.
    trainer = digitrec.Trainer(
        digitrec.DigitClassifier(seed=0), epochs=1, data_on_device=False, progress=False
    )
    trainer.fit(mnist_train[:256])
    assert trainer.config.to_dict()["data_on_device"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("on_device", [True, False])
def test_cuda_precision_and_streaming(
    mnist_train: digitrec.ImageDataset, precision: str, on_device: bool
) -> None:
    model = digitrec.DigitClassifier("resnet", seed=0)
    history = digitrec.Trainer(
        model,
        device="cuda",
        epochs=2,
        batch_size=128,
        lr=0.05,
        precision=precision,  # type: ignore[arg-type]
        data_on_device=on_device,
        progress=False,
    ).fit(mnist_train[:2048], val=mnist_train[2048:2560])
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] > 0.5
