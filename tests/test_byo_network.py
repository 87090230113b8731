"""Bring your own network: registered factories, wrapped modules, and the built-in resnet."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

import digitrec
from digitrec.io.tensorfile import read_file, tensors_to_bytes


class TwoPaths(nn.Module):
    """Not a Sequential: two branches summed, then a head (like a user's own model)."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.wide = nn.Conv2d(channels, 8, 5, padding=2)
        self.narrow = nn.Conv2d(channels, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.wide(x) + self.narrow(x)).relu()
        pooled = nn.functional.adaptive_avg_pool2d(features, 4).flatten(1)
        logits: torch.Tensor = self.head(pooled)
        return logits


def two_paths(config: digitrec.ModelConfig) -> nn.Module:
    return TwoPaths(config.input_shape[0], config.num_classes)


@pytest.fixture(autouse=True)
def _registered() -> None:
    digitrec.models.register_network("test-two-paths", two_paths, overwrite=True)


def test_wrapped_module_trains_saves_and_loads_bit_identically(
    mnist_train: digitrec.ImageDataset, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = digitrec.DigitClassifier.from_module(
        TwoPaths(1, 10), input_shape=(1, 28, 28), num_classes=10, factory="test-two-paths"
    )
    assert model.arch == "test-two-paths"
    history = digitrec.Trainer(model, epochs=2, batch_size=64, lr=0.05, progress=False).fit(
        mnist_train[:1024], val=mnist_train[1024:1536]
    )
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.3
    digitrec.calibrate(model, mnist_train[1024:1536])
    path = digitrec.save(model, tmp_path / "two.safetensors")
    loaded = digitrec.load(path)
    assert isinstance(loaded.network, TwoPaths)
    assert loaded.config == model.config
    originals, restored = model.state_dict(), loaded.state_dict()
    assert originals.keys() == restored.keys()
    assert all(torch.equal(originals[k], restored[k]) for k in originals)
    images = mnist_train[2000:2100].images
    assert torch.equal(
        digitrec.predict_proba(model, images), digitrec.predict_proba(loaded, images)
    )
    report = digitrec.evaluate(loaded, mnist_train[2000:2300])
    assert report.total == 300


def test_a_file_naming_an_unregistered_network_is_refused(
    mnist_train: digitrec.ImageDataset, tmp_path: Path
) -> None:
    model = digitrec.DigitClassifier.from_module(
        TwoPaths(1, 10), input_shape=(1, 28, 28), num_classes=10, factory="test-two-paths"
    )
    path = digitrec.save(model, tmp_path / "two.safetensors")
    tensors, header = read_file(path, "model file")
    header["config"]["arch"] = "someone-elses-net"
    other = tmp_path / "other.safetensors"
    other.write_bytes(tensors_to_bytes(tensors, header))
    with pytest.raises(
        digitrec.CheckpointError,
        match=r"digitrec.register_network\('someone-elses-net', factory\)",
    ):
        digitrec.load(other)


def test_an_unnamed_module_trains_but_is_not_saved(tmp_path: Path) -> None:
    model = digitrec.DigitClassifier.from_module(
        TwoPaths(3, 2), input_shape=(3, 16, 16), num_classes=2
    )
    assert model.arch == "module"
    data = digitrec.ImageDataset(
        torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8), torch.arange(64) % 2
    )
    digitrec.Trainer(model, epochs=1, batch_size=16, progress=False).fit(data)
    assert model.config.mean is not None  # taken from the data
    with pytest.raises(digitrec.InvalidInputError, match="register one with"):
        digitrec.save(model, tmp_path / "unnamed.safetensors")


def test_from_module_checks_what_it_wraps() -> None:
    with pytest.raises(digitrec.InvalidTypeError, match=r"torch\.nn\.Module"):
        digitrec.DigitClassifier.from_module("net", input_shape=(1, 28, 28), num_classes=2)  # type: ignore[arg-type]
    with pytest.raises(
        digitrec.InvalidInputError, match=r"logits of shape \(2, 3\), got \(2, 10\)"
    ):
        digitrec.DigitClassifier.from_module(
            TwoPaths(1, 10), input_shape=(1, 28, 28), num_classes=3
        )
    with pytest.raises(digitrec.InvalidInputError, match="register_network"):
        digitrec.DigitClassifier.from_module(
            TwoPaths(1, 10), input_shape=(1, 28, 28), num_classes=10, factory="not-registered"
        )
    # The factory must build the same weights, or a saved model could not be rebuilt.
    with pytest.raises(digitrec.InvalidInputError, match="weights differ"):
        digitrec.DigitClassifier.from_module(
            nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
            input_shape=(1, 28, 28),
            num_classes=10,
            factory="test-two-paths",
        )


def test_register_network_refuses_bad_names() -> None:
    with pytest.raises(digitrec.InvalidInputError, match="built-in"):
        digitrec.models.register_network("resnet", two_paths)
    with pytest.raises(digitrec.InvalidInputError, match="letters, digits"):
        digitrec.models.register_network("my net", two_paths)
    with pytest.raises(digitrec.InvalidInputError, match="already registered"):
        digitrec.models.register_network("test-two-paths", two_paths)
    with pytest.raises(digitrec.InvalidTypeError, match="factory must be a function"):
        digitrec.models.register_network("x", 3)  # type: ignore[arg-type]


def test_a_registered_name_builds_like_a_built_in() -> None:
    model = digitrec.DigitClassifier(
        "test-two-paths", input_shape=(3, 32, 32), num_classes=4, seed=0
    )
    again = digitrec.DigitClassifier.from_config(model.config, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("side", [28, 64])
def test_resnet_trains_a_few_steps(side: int) -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.randint(0, 100, (64, 1, side, side), dtype=torch.uint8, generator=generator)
    images[labels == 1, :, : side // 2] += 120  # class 1: a bright top half
    data = digitrec.ImageDataset(images, labels)
    model = digitrec.DigitClassifier("resnet", input_shape=(1, side, side), num_classes=2, seed=0)
    assert isinstance(model.network, nn.Sequential)
    assert isinstance(model.network[-1], nn.Linear)  # penultimate features: network[:-1]
    recipe = replace(digitrec.RECIPES["resnet"], warmup_epochs=0.0)
    history = digitrec.Trainer(
        model, recipe=recipe, epochs=3, batch_size=32, lr=0.05, progress=False
    ).fit(data, val=data)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.9


def test_resnet_takes_large_inputs() -> None:
    model = digitrec.DigitClassifier("resnet", input_shape=(3, 224, 224), num_classes=3, seed=0)
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 224, 224, dtype=torch.uint8)).shape == (1, 3)
    assert digitrec.Trainer(model, progress=False).config == digitrec.RECIPES["resnet"]


class NoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.conv(x).flatten(1)
        return logits


class HeadTwice(TwoPaths):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + super().forward(x)


def test_a_wrapped_module_gets_out_of_distribution_statistics(
    mnist_train: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    from digitrec.models import _ood_features

    torch.manual_seed(0)
    model = digitrec.DigitClassifier.from_module(
        TwoPaths(1, 10), input_shape=(1, 28, 28), num_classes=10, factory="test-two-paths"
    )
    digitrec.Trainer(model, epochs=2, batch_size=64, lr=0.05, progress=False).fit(
        mnist_train[:4096]
    )
    detector = digitrec.fit_ood(model, mnist_train[:4096])
    assert detector.description()["layer_dims"] == [8 * 16]  # the head's input
    # The features are the normalised input of the head, and the logits the network's.
    images = mnist_test[:50].images
    features, _ = _ood_features.features_in_batches(model, images, torch.device("cpu"), 16)
    network = model.network
    assert isinstance(network, TwoPaths)
    network.eval()
    with torch.no_grad():
        x = model.preprocess(images)
        pooled = nn.functional.adaptive_avg_pool2d(
            network.norm(network.wide(x) + network.narrow(x)).relu(), 4
        ).flatten(1)
        expected = pooled / pooled.norm(dim=1, keepdim=True)
        assert torch.allclose(features.network, expected, atol=1e-6)
        assert torch.allclose(features.logits, network(x), atol=1e-6)
    # Noise and blank images score far above digits, and the statistics travel with the file.
    gen = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (200, 1, 28, 28), generator=gen, dtype=torch.uint8)
    inside = digitrec.ood_scores(model, mnist_test[:1000], detector=detector)
    auroc, fpr = digitrec.ood_metrics(inside, digitrec.ood_scores(model, noise, detector=detector))
    assert auroc > 0.99
    assert fpr < 0.05
    detector.attach(model)
    loaded = digitrec.load(digitrec.save(model, tmp_path / "two.safetensors"))
    assert torch.equal(digitrec.ood_scores(loaded, noise), digitrec.ood_scores(model, noise))


@pytest.mark.parametrize(
    ("network", "message"), [(NoLinear(), "has none"), (HeadTwice(1, 10), "ran 2 time")]
)
def test_out_of_distribution_statistics_need_one_head(
    mnist_train: digitrec.ImageDataset, network: nn.Module, message: str
) -> None:
    model = digitrec.DigitClassifier.from_module(network, input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(digitrec.InvalidInputError, match=message):
        digitrec.fit_ood(model, mnist_train[:200])
