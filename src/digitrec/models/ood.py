"""Out-of-distribution scores: how far an image lies from what the model was trained on.

A classifier gives every image a label, a letter or a chest X-ray included, and often
with high confidence. These scores say how unlike the training images an image is,
without changing any prediction. Higher means further from the training data.

Without fitted statistics the score is the energy of the logits,
``-logsumexp(logits)`` (Liu et al., 2020, with T = 1). :func:`fit_ood` fits
statistics of the training data; with them the score is the sum of four
standardised terms,

    z(kNN, network) + z(kNN, pixels) + z(class Gaussians, pixels) + z(energy)

1. the distance to the k-th nearest of a subsample of the training images in the
   network's features (Sun et al., 2022): every hidden ReLU layer's output
   (averaged over space for convolutional maps), each L2-normalised, joined (for
   a network of your own: the input of its last ``nn.Linear``, L2-normalised);
2. the same distance in a coarse view of the pixels (7x7 averages, L2-normalised),
   which sees noise, blank and foreign images whatever the network learnt;
3. the Mahalanobis distance (plus the log-determinant, i.e. the negative
   log-likelihood up to a constant) to the nearest class of one Gaussian per class
   fitted to the top 80 principal components of the pixels: a model of the *shape*
   of each class, which a letter drawn with digit-like strokes still misses;
4. the energy of the logits.

Each term is standardised with its mean and standard deviation on held-out
training images, and the threshold is set to accept 95% of them.

The measurements behind the choice are in the user guide's out-of-distribution section.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import torch

from .. import _images
from .._checks import check_positive_int
from .._device import DeviceLike
from .._runtime import model_device
from ..data import ImageDataset
from ..errors import InvalidInputError, InvalidTypeError
from . import _ood_features as of
from ._batches import logits_in_batches
from ._validate import check_image_shape, check_labelled_data, check_model, plain_forward
from .classifier import DigitClassifier

__all__ = ["OOD_FORMAT", "OODDetector", "fit_ood", "ood_scores"]

OOD_FORMAT = of.OOD_FORMAT
"""The format tag in every :meth:`OODDetector.description`."""

_TERMS = of.TERMS
_DEFAULT_BATCH_SIZE = 1024
_MAX_BYTES = 960_000
_MAX_FIT = 20_000


class OODDetector:
    """Statistics of a model's training data, and a threshold.

    Made by :func:`fit_ood`; pass it to :func:`ood_scores`, or attach it to its
    model with :meth:`attach` so that :func:`ood_scores` uses it unasked (and
    :func:`~digitrec.save` stores it in the model file). It is stored as named
    tensors (:meth:`state_tensors`: the float16 kNN banks of a subsample of the
    training images, the pixels' principal axes and one Gaussian per class) and a
    JSON-compatible :meth:`description` (method, threshold, sizes, k, the
    standardisation of the four score terms, and the sha256 of the weights it was
    fitted on), and rebuilt with :meth:`from_state`. It refuses any model other
    than its own.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
        >>> again = digitrec.OODDetector.from_state(detector.description(),
        ...                                          detector.state_tensors())
        >>> again.threshold == detector.threshold
        True
    """

    def __init__(self, description: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        self._description = dict(description)
        self._tensors = dict(tensors)
        # The last model whose weights matched the sha256, and their fingerprint then.
        self._matched: tuple[weakref.ref[DigitClassifier], of.WeightsKey] | None = None
        # The float16 banks in float32, laid out for distances once, not on every call.
        self._banks = {name: of.Bank(self._tensors[name]) for name in ("bank", "pixel_bank")}
        self._gaussians = of.Gaussians(
            self._tensors["pixel_mean"],
            self._tensors["pixel_basis"],
            self._tensors["class_means"],
            self._tensors["class_precisions"],
            self._tensors["class_logdets"],
        )

    @property
    def threshold(self) -> float:
        """Images scoring above this are out of distribution.

        It accepts 95% of the held-out in-distribution images of :func:`fit_ood`.
        """
        return float(self._description["threshold"])

    def description(self) -> dict[str, Any]:
        """Return the JSON-compatible settings that go with :meth:`state_tensors`.

        Example:
            >>> model = digitrec.DigitClassifier("mlp", seed=0)
            >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
            >>> detector.description()["feature_dim"], detector.description()["pca_dim"]
            (96, 80)
        """
        return dict(self._description)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Return the statistics as named CPU tensors for a safetensors file.

        Example:
            >>> model = digitrec.DigitClassifier("mlp", seed=0)
            >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
            >>> detector.state_tensors()["bank"].shape
            torch.Size([1800, 96])
        """
        return dict(self._tensors)

    @classmethod
    def from_state(
        cls, description: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
    ) -> OODDetector:
        """Rebuild a detector from its :meth:`description` and :meth:`state_tensors`.

        Raises:
            CheckpointError: If the description or the tensors are not a detector's.

        Example:
            >>> digitrec.OODDetector.from_state({"format": "x"}, {})
            Traceback (most recent call last):
            ...
            digitrec.errors.CheckpointError: ...
        """
        d = of.check_description(description)
        return cls(d, of.check_tensors(d, tensors))

    def check_model(self, model: DigitClassifier) -> None:
        """Raise unless ``model`` is the model (same weights) these statistics belong to.

        Raises:
            InvalidInputError: "wrong model for the statistics", with what differs.

        Example:
            >>> model = digitrec.DigitClassifier("mlp", seed=0)
            >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
            >>> detector.check_model(digitrec.DigitClassifier("mlp", seed=1))
            Traceback (most recent call last):
            ...
            digitrec.errors.InvalidInputError: wrong model for the statistics: ...
        """
        checked = check_model(model)
        wanted = self._description
        got = {
            "arch": checked.arch,
            "input_shape": list(checked.input_shape),
            "num_classes": checked.num_classes,
        }
        differ = {key: f"{wanted[key]} != {got[key]}" for key in got if got[key] != wanted[key]}
        if differ:
            raise InvalidInputError(
                f"wrong model for the statistics: statistics != model in {differ}"
            )
        if of.still_matches(self._matched, checked):
            return  # the weights it was hashed with (sealed ones cannot change)
        key = of.weights_key(checked)
        if wanted["weights_sha256"] != of.weights_sha256(checked):
            raise InvalidInputError(
                "wrong model for the statistics: the model's weights differ from those the "
                "statistics were fitted on (fit them again with fit_ood after training)"
            )
        self._matched = (weakref.ref(checked), key)

    def attach(self, model: DigitClassifier) -> DigitClassifier:
        """Check ``model`` and set it as ``model.ood``, where :func:`ood_scores` looks.

        A plain attribute, not a submodule: the model's ``state_dict`` is unchanged.

        Example:
            >>> model = digitrec.DigitClassifier("mlp", seed=0)
            >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
            >>> detector.attach(model).ood is detector
            True
        """
        self.check_model(model)
        setattr(model, "ood", self)  # noqa: B010 (DigitClassifier declares no such attribute)
        return model

    def _terms(self, features: of.Features) -> dict[str, torch.Tensor]:
        k = self._description["k"]
        return {
            "knn": self._banks["bank"].kth_distance(features.network, k),
            "pixel_knn": self._banks["pixel_bank"].kth_distance(features.small, k),
            "gauss": self._gaussians.distance(features.pixels),
            "energy": of.energy(features.logits),
        }

    def _score(self, features: of.Features) -> torch.Tensor:
        d = self._description
        terms = self._terms(features)
        total = sum(
            ((terms[t].double() - d[f"{t}_mean"]) / d[f"{t}_std"] for t in _TERMS),
            start=torch.zeros(features.logits.shape[0], dtype=torch.float64),
        )
        return total.float()

    def __repr__(self) -> str:
        d = self._description
        return (
            f"OODDetector(arch={d['arch']!r}, k={d['k']}, bank_size={d['bank_size']}, "
            f"pca_dim={d['pca_dim']}, threshold={d['threshold']:.4g})"
        )


def _image_batch(model: DigitClassifier, images: Any) -> torch.Tensor:
    batch = images.images if isinstance(images, ImageDataset) else _images.as_image_batch(images)
    check_image_shape(model, tuple(batch.shape[1:]), "images")
    return batch


def ood_scores(
    model: DigitClassifier,
    images: Any,
    *,
    detector: OODDetector | None = None,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Return one out-of-distribution score per image: higher = further from the training data.

    With a detector (``detector``, or the one attached to the model with
    :meth:`OODDetector.attach`), the fitted score, to compare with
    ``detector.threshold``; without one, the energy score ``-logsumexp(logits)``.
    Predictions are unchanged either way.

    Args:
        model: The classifier.
        images: An :class:`~digitrec.ImageDataset`, or a tensor or array of shape
            ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``, uint8 or float pixels.
        detector: Statistics fitted by :func:`fit_ood` for this model.
        device: Where to compute; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        ``float32`` CPU tensor of shape ``(N,)``.

    Raises:
        InvalidInputError: If the images do not fit the model, or the detector
            belongs to another model.
        InvalidTypeError: For unsupported types.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> digitrec.ood_scores(model, torch.zeros(3, 28, 28)).shape
        torch.Size([3])
    """
    checked = check_model(model)
    batch = _image_batch(checked, images)
    size = check_positive_int(batch_size, "batch_size")
    where = model_device(checked, device)
    if detector is None:
        detector = getattr(checked, "ood", None)
        if detector is None:
            return of.energy(logits_in_batches(checked, batch, where, size))
    if not isinstance(detector, OODDetector):
        raise InvalidTypeError(
            f"detector must be a digitrec.OODDetector, got {type(detector).__name__}"
        )
    detector.check_model(checked)
    if batch.shape[0] == 0:
        return torch.empty(0)
    features, _ = of.features_in_batches(checked, batch, where, size)
    return detector._score(features)


def scores_and_logits(
    model: DigitClassifier, batch: torch.Tensor, device: torch.device, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The attached detector's scores and the logits of checked ``batch``, in one pass.

    ``None`` when the model has no detector, or when its logits might not be those
    of the network's layers run in turn (a ``forward`` override or forward hooks):
    then the caller runs the model and :func:`ood_scores` separately.
    """
    detector = getattr(model, "ood", None)
    if not isinstance(detector, OODDetector) or batch.shape[0] == 0 or not plain_forward(model):
        return None
    detector.check_model(model)
    features, _ = of.features_in_batches(model, batch, device, batch_size)
    return detector._score(features), features.logits


def fit_ood(
    model: DigitClassifier,
    data: ImageDataset,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    k: int = 1,
    bank_size: int | None = None,
    device: DeviceLike | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
) -> OODDetector:
    """Fit out-of-distribution statistics of ``model``'s training data.

    ``data`` is split (:meth:`~digitrec.ImageDataset.split`) into a part that the
    statistics are fitted on (the kNN banks and the class Gaussians, on a random
    subsample of at most 20,000 images) and a held-out part that standardises the
    four score terms and sets the threshold at the score accepting 95% of its images.

    Args:
        model: The trained classifier; the statistics belong to its current weights.
        data: Labelled in-distribution images, normally the training set.
        val_fraction: The held-out share of ``data``.
        seed: Seed of the split and of the subsample.
        k: Which nearest neighbour's distance to use (1, the nearest, measured best).
        bank_size: Training images kept in the kNN banks; by default as many as fit,
            with the rest of the statistics, in under 1 MB. At most the subsample's
            20,000: more images separate better (the bundled CNN on the development
            letters: AUROC 0.987 with 600, 0.990 with 5,000, 0.991 with 20,000), at
            about 0.6 KB each in the CNN's model file and a slower kNN search.
        device: Where to compute; ``None``: where the model is.
        batch_size: Images per forward pass.

    Returns:
        The fitted :class:`OODDetector`.

    Raises:
        InvalidInputError: For an empty or unfit data set, a ``val_fraction`` that
            leaves a part empty, or a ``k`` larger than the bank.
        InvalidTypeError: For a model or data of the wrong type.

    Example:
        >>> model = digitrec.DigitClassifier("mlp", seed=0)
        >>> detector = digitrec.fit_ood(model, digitrec.load_mnist("train")[:2000])
        >>> scores = digitrec.ood_scores(model, digitrec.load_mnist("test")[:100],
        ...                              detector=detector)
        >>> scores.shape
        torch.Size([100])
    """
    checked = check_model(model)
    data = check_labelled_data(checked, data)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, float):
        raise InvalidInputError(f"val_fraction must be a float in (0, 1), got {val_fraction!r}")
    k = check_positive_int(k, "k")
    size = check_positive_int(batch_size, "batch_size")
    where = model_device(checked, device)
    fit, val = data.split(val_fraction, seed=seed)
    order = torch.randperm(len(fit), generator=torch.Generator().manual_seed(seed))[:_MAX_FIT]
    features, dims = of.features_in_batches(checked, fit.images[order], where, size)
    gaussians = of.fit_gaussians(features.pixels, fit.labels[order], checked.num_classes)
    fixed = sum(t.numel() * t.element_size() for t in gaussians.tensors().values())
    per_image = 2 * (features.network.shape[1] + features.small.shape[1])
    keep = max(1, (_MAX_BYTES - fixed) // per_image) if bank_size is None else bank_size
    keep = min(check_positive_int(keep, "bank_size"), len(order))
    if k > keep:
        raise InvalidInputError(f"k must be at most the bank's {keep} images, got {k}")
    tensors = gaussians.tensors() | {
        "bank": features.network[:keep].to(torch.float16).contiguous(),
        "pixel_bank": features.small[:keep].to(torch.float16).contiguous(),
    }
    description: dict[str, Any] = {
        "format": OOD_FORMAT,
        "method": of.METHOD,
        "arch": checked.arch,
        "input_shape": list(checked.input_shape),
        "num_classes": checked.num_classes,
        "feature_dim": features.network.shape[1],
        "layer_dims": dims,
        "pixel_dim": features.pixels.shape[1],
        "small_dim": features.small.shape[1],
        "pca_dim": gaussians.basis.shape[1],
        "weights_sha256": of.weights_sha256(checked),
        "k": k,
        "bank_size": keep,
        "threshold": 0.0,
        "val_fraction": val_fraction,
        "seed": seed,
        "fit_images": len(fit),
        "val_images": len(val),
    }
    unscaled = OODDetector(description, tensors)
    val_features, _ = of.features_in_batches(checked, val.images, where, size)
    for term, values in unscaled._terms(val_features).items():
        std = float(values.double().std()) if values.numel() > 1 else 1.0
        description[f"{term}_mean"] = float(values.double().mean())
        description[f"{term}_std"] = std if std > 1e-12 else 1.0
    scaled = OODDetector(description, tensors)
    description["threshold"] = of.accepting_threshold(scaled._score(val_features))
    return OODDetector(description, tensors)
