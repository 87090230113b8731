"""Out-of-distribution scores: real separation, the threshold, storage, refusal, metrics."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from sklearn.metrics import roc_auc_score, roc_curve  # type: ignore[import-untyped]

import digitrec
from digitrec import OODDetector, fit_ood, ood_metrics, ood_scores

PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)


@pytest.fixture(scope="module")
def mlp(mnist_train: digitrec.ImageDataset) -> digitrec.DigitClassifier:
    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, progress=False).fit(mnist_train)
    return model


@pytest.fixture(scope="module")
def detector(mlp: digitrec.DigitClassifier, mnist_train: digitrec.ImageDataset) -> OODDetector:
    return fit_ood(mlp, mnist_train)


def noise_and_blank(count: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (count, 1, 28, 28), generator=gen, dtype=torch.uint8)
    levels = torch.linspace(0, 255, count).round().to(torch.uint8)
    blank = levels.view(count, 1, 1, 1).expand(count, 1, 28, 28).contiguous()
    return torch.cat([noise, blank])


def test_noise_and_blank_score_higher_than_mnist_test(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    inside = ood_scores(mlp, mnist_test, detector=detector)
    outside = ood_scores(mlp, noise_and_blank(500), detector=detector)
    auroc, fpr = ood_metrics(inside, outside)
    assert auroc > 0.99
    assert fpr < 0.05
    assert inside.dtype == torch.float32
    assert inside.shape == (len(mnist_test),)


def test_threshold_accepts_95_percent_of_unseen_digits(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    accepted = (ood_scores(mlp, mnist_test, detector=detector) <= detector.threshold).double()
    assert 0.93 <= float(accepted.mean()) <= 0.97
    description = detector.description()
    assert description["val_images"] == 6000
    assert description["fit_images"] == 54000


def test_statistics_are_small(detector: OODDetector) -> None:
    tensors = detector.state_tensors()
    assert sum(t.numel() * t.element_size() for t in tensors.values()) < 1_000_000
    assert tensors["bank"].shape[1] == 64 + 32
    assert tensors["pixel_bank"].shape == (tensors["bank"].shape[0], 49)
    assert tensors["pixel_basis"].shape == (784, 80)
    assert tensors["class_precisions"].shape == (10, 80, 80)


def test_a_larger_bank_keeps_the_smaller_one_and_is_nearer(
    mlp: digitrec.DigitClassifier,
    mnist_train: digitrec.ImageDataset,
    mnist_test: digitrec.ImageDataset,
) -> None:
    from digitrec.models import _ood_features as of

    data = mnist_train[:10_000]  # 9,000 images to fit on
    small = fit_ood(mlp, data, bank_size=600)
    large = fit_ood(mlp, data, bank_size=8000)  # beyond the first version's cap of 5,000
    everything = fit_ood(mlp, data, bank_size=50_000)  # more than there are: all of them
    assert large.state_tensors()["bank"].shape == (8000, 64 + 32)
    assert everything.description()["bank_size"] == 9000
    for name in ("bank", "pixel_bank"):
        assert torch.equal(large.state_tensors()[name][:600], small.state_tensors()[name])
    # Every image's nearest bank image can only come nearer as the bank grows.
    images = mnist_test.images[:500]
    features, _ = of.features_in_batches(mlp, images, torch.device("cpu"), 256)
    nearest = [
        of.Bank(d.state_tensors()["bank"]).kth_distance(features.network, 1)
        for d in (small, large, everything)
    ]
    assert bool((nearest[1] <= nearest[0]).all())
    assert bool((nearest[2] <= nearest[1]).all())
    assert float(nearest[2].mean()) < float(nearest[0].mean())


def test_energy_without_statistics(
    mlp: digitrec.DigitClassifier, mnist_test: digitrec.ImageDataset
) -> None:
    images = mnist_test.images[:50]
    expected = -torch.logsumexp(mlp(images).detach().double(), dim=1).float()
    torch.testing.assert_close(ood_scores(mlp, images), expected)


def test_statistics_round_trip_through_safetensors_bytes(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    data = save_safetensors(
        detector.state_tensors(), metadata={"ood": json.dumps(detector.description())}
    )
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    restored = OODDetector.from_state(json.loads(header["ood"]), load_safetensors(data))
    for name, original in detector.state_tensors().items():
        again = restored.state_tensors()[name]
        assert again.dtype == original.dtype
        assert torch.equal(again.view(torch.uint8), original.view(torch.uint8)), name
    assert restored.description() == detector.description()
    images = mnist_test.images[:200]
    assert torch.equal(
        ood_scores(mlp, images, detector=restored), ood_scores(mlp, images, detector=detector)
    )


def test_attached_detector_is_used(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    images = mnist_test.images[:20]
    assert detector.attach(model) is model
    assert torch.equal(ood_scores(model, images), ood_scores(mlp, images, detector=detector))
    assert set(model.state_dict()) == set(mlp.state_dict())  # not a submodule


@pytest.mark.parametrize(
    "other",
    [
        lambda: digitrec.DigitClassifier("mlp", seed=1),
        lambda: digitrec.DigitClassifier("mlp", num_classes=2, seed=0),
        lambda: digitrec.DigitClassifier("cnn", seed=0),
    ],
    ids=["other-weights", "other-classes", "other-arch"],
)
def test_wrong_model_is_refused(detector: OODDetector, other: object) -> None:
    model = other()  # type: ignore[operator]
    with pytest.raises(digitrec.InvalidInputError, match="wrong model for the statistics"):
        ood_scores(model, torch.zeros(2, 28, 28), detector=detector)
    with pytest.raises(digitrec.InvalidInputError, match="wrong model for the statistics"):
        detector.attach(model)


def test_retrained_model_is_refused(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_train: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    digitrec.Trainer(model, epochs=1, progress=False).fit(mnist_train[:500])
    with pytest.raises(digitrec.InvalidInputError, match="weights differ"):
        detector.check_model(model)


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda m, other: m.load_state_dict(other.state_dict()),
        lambda m, other: next(m.parameters()).data.mul_(1.01),
        lambda m, other: torch.optim.SGD(m.parameters(), lr=0.1).step(),
    ],
    ids=["load_state_dict", "in-place", "optimizer-step"],
)
def test_weights_written_after_a_passing_check_are_refused(
    mlp: digitrec.DigitClassifier, detector: OODDetector, rewrite: object
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    images = torch.zeros(2, 28, 28)
    ood_scores(model, images, detector=detector)  # passes, and is remembered
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    rewrite(model, digitrec.DigitClassifier("mlp", seed=3))  # type: ignore[operator]
    with pytest.raises(digitrec.InvalidInputError, match="weights differ"):
        ood_scores(model, images, detector=detector)


def test_classify_gives_the_answers_of_the_separate_paths(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    detector.attach(model)
    images = torch.cat([mnist_test.images[:30], noise_and_blank(10)])
    expected = digitrec.predict_proba(model, images, prepare=False)
    flags = (ood_scores(model, images) > detector.threshold).tolist()
    assert any(flags)
    assert not all(flags)
    one_pass = digitrec.classify(model, images, prepare=False)
    # A forward hook makes classify run the model and the scores separately.
    handle = model.register_forward_hook(lambda module, args, output: None)
    try:
        two_passes = digitrec.classify(model, images, prepare=False)
    finally:
        handle.remove()
    for answers in (one_pass, two_passes):
        assert torch.equal(torch.tensor([a.probabilities for a in answers]), expected)
        assert [a.out_of_distribution for a in answers] == flags


@pytest.mark.parametrize(
    ("change", "tensors"),
    [
        ({"format": "other/1"}, None),
        ({"k": "ten"}, None),
        ({"feature_dim": 95}, None),
        ({"method": "knn+energy"}, None),
        ({"energy_std": 0.0}, None),
        ({}, {"bank": torch.zeros(5000, 96)}),
        ({}, {}),
        ("nan", None),
    ],
)
def test_broken_statistics_are_refused(
    detector: OODDetector,
    change: dict[str, object] | str,
    tensors: dict[str, torch.Tensor] | None,
) -> None:
    given = detector.state_tensors() if tensors is None else tensors
    if isinstance(change, str):  # "nan"
        given["class_means"] = torch.full_like(given["class_means"], float("nan"))
        change = {}
    with pytest.raises(digitrec.CheckpointError):
        OODDetector.from_state(detector.description() | change, given)


def test_save_and_load_keep_the_statistics(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
    digitrec.save(detector.attach(model), path)
    restored = digitrec.load(path)
    assert isinstance(restored.ood, OODDetector)
    assert restored.ood.description() == detector.description()
    images = mnist_test.images[:300]
    assert torch.equal(ood_scores(restored, images), ood_scores(mlp, images, detector=detector))
    assert digitrec.read_metadata(path)["ood"]["threshold"] == detector.threshold
    plain = os.path.join(tempfile.mkdtemp(), "plain.safetensors")
    digitrec.save(mlp, plain)
    assert getattr(digitrec.load(plain), "ood", None) is None


def test_load_refuses_a_broken_or_foreign_ood_block(
    mlp: digitrec.DigitClassifier, detector: OODDetector
) -> None:
    folder = tempfile.mkdtemp()
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    path = os.path.join(folder, "mlp.safetensors")
    digitrec.save(detector.attach(model), path)
    data = Path(path).read_bytes()
    size = int.from_bytes(data[:8], "little")
    tensors = load_safetensors(data)
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    header = json.loads(metadata["digitrec"])
    other = digitrec.DigitClassifier("mlp", seed=3).state_dict()
    cases = {
        "truncated-bank": ({**tensors, "ood.bank": tensors["ood.bank"][:10]}, header),
        "no-description": (tensors, {k: v for k, v in header.items() if k != "ood"}),
        "other-weights": (tensors | {k: v for k, v in other.items()}, header),
    }
    for name, (broken, head) in cases.items():
        target = os.path.join(folder, f"{name}.safetensors")
        blob = save_safetensors(broken, metadata={**metadata, "digitrec": json.dumps(head)})
        Path(target).write_bytes(blob)
        with pytest.raises(digitrec.CheckpointError):
            digitrec.load(target)


def test_save_refuses_statistics_of_older_weights(
    mlp: digitrec.DigitClassifier, detector: OODDetector
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    detector.attach(model)
    with torch.no_grad():
        next(iter(model.network.parameters())).add_(1.0)
    with pytest.raises(digitrec.InvalidInputError, match="weights differ"):
        digitrec.save(model, os.path.join(tempfile.mkdtemp(), "m.safetensors"))


def test_wrong_image_shape_is_refused(mlp: digitrec.DigitClassifier, detector: OODDetector) -> None:
    for chosen in (None, detector):
        with pytest.raises(digitrec.InvalidInputError, match="28"):
            ood_scores(mlp, torch.zeros(2, 1, 32, 32), detector=chosen)
    with pytest.raises(digitrec.InvalidTypeError):
        ood_scores(mlp, torch.zeros(2, 28, 28), detector="stats")  # type: ignore[arg-type]


def test_fit_refuses_bad_arguments(mlp: digitrec.DigitClassifier) -> None:
    data = digitrec.load_mnist("test")[:100]
    with pytest.raises(digitrec.InvalidInputError):
        fit_ood(mlp, data, k=200)
    with pytest.raises(digitrec.InvalidInputError):
        fit_ood(mlp, data, val_fraction=1.5)
    with pytest.raises(digitrec.InvalidTypeError):
        fit_ood(mlp, data.images)  # type: ignore[arg-type]


def synthetic_xrays(count: int, seed: int) -> digitrec.ImageDataset:
    """A stand-in for chest X-rays: smooth bright blobs on grey, two classes by blob size."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    labels = torch.randint(0, 2, (count,), generator=gen)
    centres = 10 + 8 * torch.rand(count, 2, generator=gen)
    width = (3.0 + 4.0 * labels).view(count, 1, 1)
    dist = (ys - centres[:, 0, None, None]) ** 2 + (xs - centres[:, 1, None, None]) ** 2
    images = (
        90
        + 120 * torch.exp(-dist / (2 * width**2))
        + 10 * torch.randn(count, 28, 28, generator=gen)
    )
    return digitrec.ImageDataset(images.clamp(0, 255).to(torch.uint8).unsqueeze(1), labels)


@pytest.mark.parametrize("source", ["synthetic", "pneumonia"])
def test_digits_are_out_of_distribution_for_an_xray_model(
    source: str, mnist_test: digitrec.ImageDataset
) -> None:
    if source == "pneumonia":
        if not PNEUMONIA.is_file():
            pytest.skip("PneumoniaMNIST is not in ../shared/data/medmnist")
        train = digitrec.ImageDataset.from_npz(PNEUMONIA, "train")
        test = digitrec.ImageDataset.from_npz(PNEUMONIA, "test")
    else:
        train, test = synthetic_xrays(3000, seed=0), synthetic_xrays(500, seed=1)
    model = digitrec.DigitClassifier("mlp", num_classes=2, seed=0)
    digitrec.Trainer(model, epochs=5, progress=False).fit(train)
    detector = fit_ood(model, train)
    auroc, fpr = ood_metrics(
        ood_scores(model, test, detector=detector),
        ood_scores(model, mnist_test.images[:1000], detector=detector),
    )
    assert auroc > 0.99
    assert fpr < 0.05


def sklearn_fpr_at_95_tpr(inside: np.ndarray, outside: np.ndarray) -> float:
    # The literature's FPR95: in-distribution images are the positives of the TPR,
    # with a lower OOD score meaning more in-distribution.
    truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    fpr, tpr, _ = roc_curve(truth, -np.r_[inside, outside], drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= 0.95)])


scores = st.lists(
    st.floats(-10, 10, allow_nan=False, width=32) | st.integers(-3, 3).map(float),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(inside=scores, outside=scores)
def test_metrics_match_scikit_learn(inside: list[float], outside: list[float]) -> None:
    auroc, fpr = ood_metrics(torch.tensor(inside), torch.tensor(outside))
    truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    expected = roc_auc_score(truth, np.r_[inside, outside])
    assert auroc == pytest.approx(expected, abs=1e-12)
    assert fpr == pytest.approx(sklearn_fpr_at_95_tpr(np.array(inside), np.array(outside)))


def test_metrics_refuse_empty_or_nan() -> None:
    with pytest.raises(digitrec.InvalidInputError):
        ood_metrics(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(digitrec.InvalidInputError):
        ood_metrics(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_report_measures_separation_from_an_ood_set(
    mlp: digitrec.DigitClassifier, detector: OODDetector, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    model.load_state_dict(mlp.state_dict())
    detector.attach(model)
    test = mnist_test[:1000]
    outside = noise_and_blank(200)
    report = digitrec.evaluate(model, test, ood=outside)
    expected = ood_metrics(ood_scores(model, test), ood_scores(model, outside))
    assert (report.ood_auroc, report.ood_fpr_at_95_tpr) == expected
    assert report.ood_auroc is not None
    assert report.ood_auroc > 0.99
    assert "out-of-distribution set: AUROC" in str(report)
    assert digitrec.evaluate(model, test).ood_auroc is None
    assert report.to_dict()["ood_auroc"] == report.ood_auroc
    # abstention says why: out-of-distribution images get -2, whatever their confidence
    labels = digitrec.predict_or_abstain(model, outside, min_confidence=0.0)
    assert (labels == digitrec.OUT_OF_DISTRIBUTION).float().mean() > 0.9


def test_weights_key_sees_writes_to_channels_last_convolutions() -> None:
    from digitrec.models._ood_features import weights_key

    model = digitrec.DigitClassifier("cnn", seed=0)
    assert isinstance(model.network, torch.nn.Sequential)
    convs = [m for m in model.network if isinstance(m, torch.nn.Conv2d)]
    weight = convs[-1].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()  # read without a copy, in memory order
    before = weights_key(model)
    weight.data[1, 2, 0, 1] += 0.5  # through .data: no version counter moves
    assert weights_key(model) != before
    weight.data[1, 2, 0, 1] -= 0.5
    assert weights_key(model) == before


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    width=st.integers(1, 20),
    queries=st.integers(1, 30),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
@example(rows=1, width=1, queries=21, k=1, seed=24)  # a near-zero distance cdist subtracts
def test_bank_distances_are_those_of_cdist(
    rows: int, width: int, queries: int, k: int, seed: int
) -> None:
    from digitrec.models._ood_features import Bank

    generator = torch.Generator().manual_seed(seed)
    bank = torch.randn(rows, width, generator=generator).to(torch.float16)
    features = torch.randn(queries, width, generator=generator)
    k = min(k, rows)
    got = Bank(bank).kth_distance(features, k)
    # The same computation as cdist's matrix-product form, which cdist picks for more
    # than 25 rows (for fewer it subtracts directly)...
    expected = torch.cdist(features, bank.float(), compute_mode="use_mm_for_euclid_dist")
    torch.testing.assert_close(got, expected.kthvalue(k, dim=1).values, rtol=1e-5, atol=1e-5)
    # ...and within float32 rounding of the squared norms of the direct difference: the
    # product form cancels, so a nearly zero distance carries an absolute error there.
    direct = (features[:, None, :] - bank.float()[None]).pow(2).sum(-1).kthvalue(k, dim=1).values
    norms = features.pow(2).sum(-1) + bank.float().pow(2).sum(-1).max()
    assert bool(((got.double() ** 2 - direct.double()).abs() <= 1e-6 * (1 + norms)).all())


def test_a_sealed_model_is_checked_against_its_statistics_once(
    mlp: digitrec.DigitClassifier,
    detector: OODDetector,
    mnist_test: digitrec.ImageDataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digitrec.models import _ood_features

    model = copy.deepcopy(mlp)
    own = OODDetector.from_state(detector.description(), detector.state_tensors())
    own.check_model(model)  # the first check hashes the weights
    hashed: list[int] = []
    real = _ood_features.weights_key

    def counting(checked: digitrec.DigitClassifier) -> tuple[int, ...]:
        hashed.append(1)
        return real(checked)

    monkeypatch.setattr(_ood_features, "weights_key", counting)
    own.check_model(model)
    assert len(hashed) == 1  # an ordinary model is fingerprinted before every use
    _ood_features.SEALED.add(model)
    scores = ood_scores(model, mnist_test[:20], detector=own)
    assert len(hashed) == 1  # a sealed one is not
    assert torch.equal(scores, ood_scores(mlp, mnist_test[:20], detector=detector))
