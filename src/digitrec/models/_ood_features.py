"""The measurements behind :mod:`digitrec.models.ood`: features, distances, Gaussians.

Four views of an image, each turned into one number that grows away from the
training data: the distance to the k-th nearest training image in the network's
feature space, the same in a coarse 7x7 view of the pixels, the Mahalanobis
distance to the nearest class in the principal components of the pixels, and the
energy of the logits.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from .._runtime import eval_mode, move_to
from ..errors import CheckpointError, InvalidInputError
from .classifier import DigitClassifier

_EPS = 1e-12
#: Largest side of the pixel view the Gaussians see (an MNIST image is kept whole).
PIXEL_SIDE = 28
#: Side of the coarse pixel view of the kNN term.
SMALL_SIDE = 7
#: Principal components of the pixel view kept for the Gaussians.
PCA_DIM = 80
#: Added to every class covariance (pixel values on the 0-1 scale): a floor on the
#: variance of rare directions, so a few training images cannot make one infinitely narrow.
RIDGE = 1e-3


@dataclass(frozen=True)
class Features:
    """What the scores need of a batch of images, on the CPU."""

    network: torch.Tensor  # joined, normalised hidden-layer features
    pixels: torch.Tensor  # pixel view for the Gaussians, 0-1 scale
    small: torch.Tensor  # coarse pixel view, normalised
    logits: torch.Tensor


def network_parts(model: DigitClassifier) -> tuple[list[nn.Module] | None, nn.Linear]:
    """The layers before the head and the head, for an ``nn.Sequential`` ending in ``nn.Linear``.

    Any other network gives ``None`` and its last ``nn.Linear`` (in ``modules()`` order).
    """
    network = model.network
    layers = list(network) if isinstance(network, nn.Sequential) else []
    head = layers[-1] if len(layers) > 1 else None
    if isinstance(head, nn.Linear):
        return layers[:-1], head
    linears = [module for module in network.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise InvalidInputError(
            "out-of-distribution statistics take their features from the input of the "
            f"network's last nn.Linear layer, and {type(network).__name__} has none"
        )
    return None, linears[-1]


def _hooked_features(
    network: nn.Module, head: nn.Linear, inputs: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``network``; return the normalised input of ``head`` and the network's logits."""
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0])

    handle = head.register_forward_pre_hook(keep)
    try:
        logits = network(inputs)
    finally:
        handle.remove()
    if len(captured) != 1 or not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise InvalidInputError(
            "out-of-distribution statistics take their features from the input of the "
            "network's last nn.Linear layer, which must run once per forward pass that "
            f"returns (N, classes) logits; it ran {len(captured)} time(s)"
        )
    features = captured[0]
    flat = features.mean(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)
    return [_normalized(flat.float())], logits


def weights_sha256(model: DigitClassifier) -> str:
    """Fingerprint of the network's weights: the statistics belong to exactly these weights.

    The temperature is left out: calibrating a model does not change its features.
    """
    digest = hashlib.sha256()
    for name, tensor in model.network.state_dict().items():
        plain = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}{tuple(plain.shape)}{plain.dtype}".encode())
        digest.update(plain.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


#: The CRC-32 of each weight tensor's bytes.
WeightsKey = tuple[int, ...]
#: Models no code can write to (the server's model process holds its own copy):
#: checked against their statistics once, not before every call.
SEALED: weakref.WeakSet[DigitClassifier] = weakref.WeakSet()


def weights_key(model: DigitClassifier) -> WeightsKey:
    """A fingerprint of the network's weights that is quicker to take than their sha256.

    Any write changes it, however it was made (an optimizer step, ``load_state_dict``,
    a write through ``.data``, which leaves a tensor's version counter as it was).
    """
    network = model.network
    key = []
    for tensor in itertools.chain(network.parameters(), network.buffers()):
        plain = tensor.detach()
        if plain.dim() == 4 and plain.is_contiguous(memory_format=torch.channels_last):
            plain = plain.permute(0, 2, 3, 1)  # the same bytes in memory order, uncopied
        if plain.device.type != "cpu" or not plain.is_contiguous():
            plain = plain.cpu().contiguous()
        key.append(zlib.crc32(plain.reshape(-1).view(torch.uint8).numpy().data))
    return tuple(key)


def still_matches(
    matched: tuple[weakref.ref[DigitClassifier], WeightsKey] | None, model: DigitClassifier
) -> bool:
    """Whether ``model`` is the one last matched, with the weights it had then."""
    if matched is None or matched[0]() is not model:
        return False
    return model in SEALED or matched[1] == weights_key(model)


def _normalized(features: torch.Tensor) -> torch.Tensor:
    normalized: torch.Tensor = features / features.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return normalized


def _layer_features(
    body: list[nn.Module], inputs: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Return every ReLU's output (and the body's own), space-averaged, and the body's output."""
    parts = []
    x = inputs
    last = len(body) - 1
    for index, module in enumerate(body):
        x = module(x)
        if isinstance(module, nn.ReLU) or index == last:
            flat = x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(1)
            parts.append(_normalized(flat.float()))
    return parts, x


def pixel_views(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the pixel view of the Gaussians and the normalised coarse view of ``batch``."""
    pixels = batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()
    height, width = pixels.shape[-2:]
    pooled = functional.adaptive_avg_pool2d(
        pixels, (min(height, PIXEL_SIDE), min(width, PIXEL_SIDE))
    )
    small = functional.adaptive_avg_pool2d(pixels, SMALL_SIDE)
    return pooled.flatten(1), _normalized(small.flatten(1))


def features_in_batches(
    model: DigitClassifier, images: torch.Tensor, device: torch.device, batch_size: int
) -> tuple[Features, list[int]]:
    """Return the CPU features of ``images`` and the widths of the network's layers."""
    body, head = network_parts(model)
    move_to(model, device)
    network, pixels, small, logits, dims = [], [], [], [], []
    with eval_mode(model):
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            inputs = model.preprocess(batch.to(device, non_blocking=True))
            inputs = inputs.contiguous(memory_format=model._memory_format)
            if body is None:
                parts, out = _hooked_features(model.network, head, inputs)
            else:
                parts, penultimate = _layer_features(body, inputs)
                out = head(penultimate)
            dims = [part.shape[1] for part in parts]
            network.append((torch.cat(parts, dim=1) / math.sqrt(len(parts))).cpu())
            logits.append(out.float().cpu())
            pooled, coarse = pixel_views(batch.cpu())
            pixels.append(pooled)
            small.append(coarse)
    if not network:
        raise InvalidInputError("out-of-distribution scores need at least one image")
    joined = Features(torch.cat(network), torch.cat(pixels), torch.cat(small), torch.cat(logits))
    return joined, dims


def energy(logits: torch.Tensor) -> torch.Tensor:
    return -torch.logsumexp(logits.double(), dim=1).float()


class Bank:
    """A kNN bank of feature rows, laid out once for Euclidean distances by one product.

    ``|x - y|² = -2 x·y + |x|² + |y|²`` as ``[-2x, |x|², 1] @ [y, 1, |y|²].T``: the
    bank's half is made here, so a call costs one matrix product however small the
    batch. It is the computation :func:`torch.cdist` does for these sizes, to the bit.
    """

    def __init__(self, bank: torch.Tensor) -> None:
        rows = bank.float()
        self.size = rows.shape[0]
        ones = torch.ones(self.size, 1)
        self._augmented = torch.cat([rows, ones, rows.pow(2).sum(-1, keepdim=True)], -1)

    def kth_distance(self, features: torch.Tensor, k: int) -> torch.Tensor:
        """The distance of each row of ``features`` to its ``k``-th nearest bank row."""
        chunks = []
        for start in range(0, features.shape[0], 1024):
            part = features[start : start + 1024].float()
            ones = torch.ones(part.shape[0], 1)
            left = torch.cat([part.mul(-2), part.pow(2).sum(-1, keepdim=True), ones], -1)
            squared = left @ self._augmented.mT
            chunks.append(squared.clamp_min_(1e-30).sqrt_().kthvalue(k, dim=1).values)
        return torch.cat(chunks) if chunks else torch.empty(0)


def accepting_threshold(scores: torch.Tensor) -> float:
    """The smallest score at or below which 95% of ``scores`` lie."""
    rank = max(1, (95 * scores.numel() + 99) // 100)  # exact: no float rounding
    return float(scores.double().kthvalue(rank).values)


@dataclass(frozen=True)
class Gaussians:
    """One Gaussian per class in the principal components of the pixel view."""

    mean: torch.Tensor  # (D,) float32
    basis: torch.Tensor  # (D, P) float16, orthonormal columns
    class_means: torch.Tensor  # (C, P) float32
    precisions: torch.Tensor  # (C, P, P) float16
    logdets: torch.Tensor  # (C,) float32; +inf for a class with too few images
    # float32 copies for distance(), made once (the fields above stay float16 for saving).
    basis32: torch.Tensor = field(init=False, repr=False, compare=False)
    precisions32: torch.Tensor = field(init=False, repr=False, compare=False)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "pixel_mean": self.mean,
            "pixel_basis": self.basis,
            "class_means": self.class_means,
            "class_precisions": self.precisions,
            "class_logdets": self.logdets,
        }

    def __post_init__(self) -> None:
        object.__setattr__(self, "basis32", self.basis.float())
        object.__setattr__(self, "precisions32", self.precisions.float())

    def distance(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return ``min over classes of (squared Mahalanobis distance + log det covariance)``."""
        coords = (pixels.float() - self.mean) @ self.basis32
        centred = coords.unsqueeze(0) - self.class_means.unsqueeze(1)  # (C, N, P)
        scores = ((centred @ self.precisions32) * centred).sum(2) + self.logdets.unsqueeze(1)
        return scores.amin(dim=0)


def fit_gaussians(pixels: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Gaussians:
    """Fit a Gaussian per class to ``pixels`` projected on their top principal components."""
    data = pixels.double()
    mean = data.mean(0)
    centred = data - mean
    dims = min(PCA_DIM, data.shape[1], max(1, data.shape[0] - 1))
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    basis = vectors[:, -dims:].flip(1).to(torch.float16).contiguous()
    coords = centred @ basis.double()
    class_means = torch.zeros(num_classes, dims, dtype=torch.float64)
    precisions = torch.zeros(num_classes, dims, dims, dtype=torch.float64)
    logdets = torch.full((num_classes,), math.inf, dtype=torch.float64)
    ridge = RIDGE * torch.eye(dims, dtype=torch.float64)
    for label in range(num_classes):
        members = coords[labels == label]
        if members.shape[0] < 2:
            continue
        class_means[label] = members.mean(0)
        covariance = torch.cov(members.T).reshape(dims, dims) + ridge
        precisions[label] = torch.linalg.inv(covariance)
        logdets[label] = torch.linalg.slogdet(covariance).logabsdet
    if not bool(torch.isfinite(logdets).any()):
        raise InvalidInputError("out-of-distribution statistics need 2 images of some class")
    return Gaussians(
        mean.float(),
        basis,
        class_means.float(),
        precisions.to(torch.float16),
        logdets.float(),
    )


#: The format tag in every detector description.
OOD_FORMAT = "digitrec.ood/2"

METHOD = "knn+pixel-knn+pixel-gaussians+energy"
TERMS = ("knn", "pixel_knn", "gauss", "energy")
DESCRIPTION_KEYS: dict[str, type] = {
    "format": str,
    "method": str,
    "arch": str,
    "input_shape": list,
    "num_classes": int,
    "feature_dim": int,
    "layer_dims": list,
    "pixel_dim": int,
    "small_dim": int,
    "pca_dim": int,
    "weights_sha256": str,
    "k": int,
    "bank_size": int,
    "threshold": float,
    "val_fraction": float,
    "seed": int,
    "fit_images": int,
    "val_images": int,
} | {f"{term}_{stat}": float for term in TERMS for stat in ("mean", "std")}


def tensor_shapes(d: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    classes, pixels, pca = d["num_classes"], d["pixel_dim"], d["pca_dim"]
    return {
        "bank": ((d["bank_size"], d["feature_dim"]), torch.float16),
        "pixel_bank": ((d["bank_size"], d["small_dim"]), torch.float16),
        "pixel_mean": ((pixels,), torch.float32),
        "pixel_basis": ((pixels, pca), torch.float16),
        "class_means": ((classes, pca), torch.float32),
        "class_precisions": ((classes, pca, pca), torch.float16),
        "class_logdets": ((classes,), torch.float32),
    }


def check_description(description: Any) -> dict[str, Any]:
    if not isinstance(description, Mapping) or description.get("format") != OOD_FORMAT:
        got = description.get("format") if isinstance(description, Mapping) else description
        raise CheckpointError(
            f"out-of-distribution statistics must have format {OOD_FORMAT!r}, got {got!r}"
        )
    wrong = [
        key
        for key, kind in DESCRIPTION_KEYS.items()
        if not isinstance(description.get(key), (int, float) if kind is float else kind)
        or isinstance(description.get(key), bool)
    ]
    if wrong or description["method"] != METHOD:
        raise CheckpointError(
            f"out-of-distribution statistics with missing or invalid fields {wrong} "
            f"(method {description.get('method')!r}, expected {METHOD!r})"
        )
    stds = [description[f"{term}_std"] for term in TERMS]
    if not all(std > 0 for std in stds) or not all(
        isinstance(n, int) and n > 0 for n in description["layer_dims"]
    ):
        raise CheckpointError(
            f"out-of-distribution statistics need standard deviations > 0, got {stds}, "
            f"and positive layer widths, got {description['layer_dims']}"
        )
    return dict(description)


def check_tensors(d: Mapping[str, Any], tensors: Any) -> dict[str, torch.Tensor]:
    """Return ``tensors`` on the CPU if they are the statistics ``d`` describes."""
    expected = tensor_shapes(d)
    given = tensors if isinstance(tensors, Mapping) else {}
    wrong = [
        f"{name}: {tuple(t.shape) if isinstance(t, torch.Tensor) else None}, "
        f"expected {shape} {dtype}"
        for name, (shape, dtype) in expected.items()
        if not isinstance(t := given.get(name), torch.Tensor)
        or tuple(t.shape) != shape
        or t.dtype != dtype
    ]
    extra = sorted(set(given) - set(expected))
    if (
        wrong
        or extra
        or not 1 <= d["k"] <= d["bank_size"]
        or sum(d["layer_dims"]) != d["feature_dim"]
    ):
        raise CheckpointError(
            f"out-of-distribution statistics do not fit their description: wrong {wrong}, "
            f"unexpected {extra}, k={d['k']} for {d['bank_size']} bank images"
        )
    plain = {name: given[name].detach().to("cpu").contiguous() for name in expected}
    logdets = plain["class_logdets"]
    finite = [plain[name].isfinite().all() for name in expected if name != "class_logdets"]
    if not all(finite) or logdets.isnan().any() or not logdets.isfinite().any():
        raise CheckpointError("out-of-distribution statistics hold NaN or infinite values")
    return plain
