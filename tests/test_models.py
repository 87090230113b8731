from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import digitrec


def test_mlp_is_the_notebooks_network() -> None:
    model = digitrec.DigitClassifier("mlp")
    assert isinstance(model.network, nn.Sequential)
    layers = list(model.network)
    assert [type(layer) for layer in layers] == [
        nn.Flatten,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert [
        (layer.in_features, layer.out_features) for layer in layers if isinstance(layer, nn.Linear)
    ] == [
        (784, 64),
        (64, 32),
        (32, 10),
    ]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 52_650


def test_state_dict_holds_weights_and_temperature() -> None:
    # Normalization is in the config, not duplicated as tensors in the state dict; the
    # calibrated temperature is state, and travels with the weights.
    keys = digitrec.DigitClassifier("mlp").state_dict().keys()
    assert {key for key in keys if not key.startswith("network.")} == {"temperature"}


shapes = st.tuples(st.sampled_from([1, 3]), st.integers(8, 40), st.integers(8, 40))


@settings(max_examples=25, deadline=None)
@given(
    arch=st.sampled_from(["mlp", "cnn"]),
    shape=shapes,
    classes=st.integers(2, 12),
    batch=st.integers(1, 3),
)
def test_both_architectures_adapt_to_any_input(
    arch: digitrec.Architecture, shape: tuple[int, int, int], classes: int, batch: int
) -> None:
    model = digitrec.DigitClassifier(arch, input_shape=shape, num_classes=classes, seed=0)
    logits = model(torch.randint(0, 256, (batch, *shape), dtype=torch.uint8))
    assert logits.shape == (batch, classes)
    assert logits.dtype == torch.float32
    assert bool(torch.isfinite(logits).all())


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_uint8_and_float_pixels_agree(arch: digitrec.Architecture) -> None:
    model = digitrec.DigitClassifier(arch, seed=0).eval()
    pixels = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(model(pixels), model(pixels.float() / 255), rtol=1e-5, atol=1e-5)


def test_preprocess_normalizes_with_mean_and_std() -> None:
    model = digitrec.DigitClassifier(mean=0.5, std=0.25)
    pixels = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 28, 28)
    out = model.preprocess(pixels)
    assert torch.unique(out[0]).tolist() == pytest.approx([-2.0])
    assert torch.unique(out[1]).tolist() == pytest.approx([2.0])


def test_per_channel_normalization() -> None:
    model = digitrec.DigitClassifier(
        "cnn", input_shape=(3, 8, 8), mean=[0.0, 0.5, 1.0], std=(1.0, 0.5, 0.25)
    )
    assert model.config.mean == (0.0, 0.5, 1.0)
    out = model.preprocess(torch.ones(1, 3, 8, 8))
    assert [float(out[0, c, 0, 0]) for c in range(3)] == pytest.approx([1.0, 1.0, 0.0])


def test_forward_rejects_wrong_shapes_with_both_shapes_in_the_message() -> None:
    model = digitrec.DigitClassifier()
    with pytest.raises(digitrec.InvalidInputError, match=r"\(N, 1, 28, 28\).*\(2, 28, 28\)"):
        model(torch.zeros(2, 28, 28))
    with pytest.raises(digitrec.InvalidInputError, match=r"\(1, 3, 28, 28\)"):
        model(torch.zeros(1, 3, 28, 28))
    with pytest.raises(digitrec.InvalidTypeError, match="int32"):
        model(torch.zeros(1, 1, 28, 28, dtype=torch.int32))


def test_seed_makes_weights_repeatable_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    first = digitrec.DigitClassifier("cnn", seed=3)
    second = digitrec.DigitClassifier("cnn", seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = digitrec.DigitClassifier("cnn", seed=4)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))


configs = st.builds(
    digitrec.ModelConfig,
    arch=st.sampled_from(["mlp", "cnn"]),
    input_shape=shapes,
    num_classes=st.integers(2, 1000),
    mean=st.tuples(st.floats(0, 1)),
    std=st.tuples(st.floats(0.01, 1)),
)


@settings(max_examples=50, deadline=None)
@given(config=configs)
def test_config_round_trips_through_json(config: digitrec.ModelConfig) -> None:
    restored = digitrec.ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config


@settings(max_examples=10, deadline=None)
@given(config=configs)
def test_model_rebuilds_from_its_config(config: digitrec.ModelConfig) -> None:
    model = digitrec.DigitClassifier.from_config(config)
    assert model.config == config
    rebuilt = digitrec.DigitClassifier.from_config(model.config)
    assert rebuilt.load_state_dict(model.state_dict())  # same architecture: every key fits


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "no-such-net"}, "arch must be one of"),
        ({"input_shape": (2, 28, 28)}, "1 or 3 channels"),
        ({"input_shape": (1, 7, 28)}, "sides >= 8"),
        ({"input_shape": (1, 28)}, "three integers"),
        ({"num_classes": 1}, ">= 2"),
        ({"num_classes": 2.5}, "integer"),
        ({"std": 0.0}, "> 0"),
        ({"mean": (0.1, 0.2)}, "1 or 1 finite"),
        ({"mean": float("nan")}, "finite"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(digitrec.InvalidInputError, match=message):
        digitrec.DigitClassifier(**kwargs)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(digitrec.InvalidInputError, match=r"unknown model config keys.*'depth'"):
        digitrec.ModelConfig.from_dict({"arch": "mlp", "depth": 3})


def test_repr_names_the_config() -> None:
    assert "arch='cnn', input_shape=(3, 16, 16), num_classes=4" in repr(
        digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=4)
    )


def test_class_names_travel_with_the_model() -> None:
    model = digitrec.DigitClassifier("cnn", num_classes=2, class_names=["normal", "pneumonia"])
    assert model.class_names == ("normal", "pneumonia")
    restored = digitrec.ModelConfig.from_dict(json.loads(json.dumps(model.config.to_dict())))
    assert restored.class_names == ("normal", "pneumonia")
    assert digitrec.DigitClassifier.from_config(restored).class_names == ("normal", "pneumonia")
    with pytest.raises(digitrec.InvalidInputError, match="2 distinct strings"):
        digitrec.DigitClassifier(num_classes=2, class_names=["a", "b", "c"])
    with pytest.raises(digitrec.InvalidInputError, match="distinct"):
        digitrec.DigitClassifier(num_classes=2, class_names=["a", "a"])


def test_state_dicts_without_temperature_load_uncalibrated() -> None:
    old = digitrec.DigitClassifier(seed=0).state_dict()
    del old["temperature"]  # as digitrec 0.1 saved them
    model = digitrec.DigitClassifier(seed=1)
    model.temperature.fill_(3.0)
    model.load_state_dict(old)
    assert float(model.temperature) == 1.0
    assert isinstance(model.network, nn.Sequential)
    first_linear = model.network[1]
    assert isinstance(first_linear, nn.Linear)
    assert torch.equal(first_linear.weight, old["network.1.weight"])
    wrapper = torch.nn.Sequential(digitrec.DigitClassifier(seed=2))  # nested: the key is prefixed
    wrapper.load_state_dict({f"0.{key}": value for key, value in old.items()})
