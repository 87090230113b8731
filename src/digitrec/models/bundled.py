"""Pretrained models shipped inside the package, loaded offline: :func:`pretrained`.

Like timm's ``create_model(name, pretrained=True)``, but nothing is downloaded: the
weights are safetensors files in ``digitrec/_weights``, made by the seeded script
``scripts/make_pretrained.py`` (which anyone can re-run to reproduce them bit for
bit on an x86-64 CPU: it pins the numerical code paths), and checked against the
sha256 recorded here before they are loaded. Their metadata holds the training
data's sha256, the recipe and the test metrics; they carry the digit-preparation
flag and fitted out-of-distribution statistics.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from types import MappingProxyType
from typing import Literal, get_args

from .._device import DeviceLike
from ..errors import ChecksumError, InvalidInputError
from .classifier import DigitClassifier
from .files import load

__all__ = ["PRETRAINED", "PretrainedName", "pretrained"]

PretrainedName = Literal["mnist-cnn", "mnist-mlp"]

#: The bundled models: file name and sha256 of each (``scripts/make_pretrained.py``).
PRETRAINED = MappingProxyType(
    {
        "mnist-cnn": (
            "mnist-cnn.safetensors",
            "57875d226b1429e473331daec1427f0e994cfb58d332a64d6b43c53ac93b512c",
        ),
        "mnist-mlp": (
            "mnist-mlp.safetensors",
            "d688eb667c6f71f05ad45431a26f70906f811ec173e8797c19b0969ae20d9c26",
        ),
    }
)


def pretrained(name: PretrainedName, *, device: DeviceLike = "cpu") -> DigitClassifier:
    """Load a model bundled with digitrec, checked against its recorded sha256.

    * ``"mnist-cnn"``: the ``"cnn"`` recipe on 55,000 MNIST training images, 99.61%
      on the test set, calibrated, with out-of-distribution statistics.
    * ``"mnist-mlp"``: the notebook's 784-64-32-10 network, the ``"mlp"`` recipe
      run for 20 epochs: 97.83% on the test set.

    Both prepare raw digit images (photos, scans, other sizes) with
    :func:`~digitrec.prepare_digits`, so ``digitrec.predict(model, ["photo.jpg"])``
    works as it is.

    Args:
        name: ``"mnist-cnn"`` or ``"mnist-mlp"``.
        device: Where to put the model.

    Returns:
        The model, in eval mode.

    Raises:
        InvalidInputError: For an unknown name.
        ChecksumError: If the bundled file is corrupt (reinstall digitrec).

    Example:
        >>> model = digitrec.pretrained("mnist-mlp")
        >>> model.config.prepare, model.arch
        ('digits', 'mlp')
    """
    if name not in get_args(PretrainedName):
        raise InvalidInputError(f"name must be one of {get_args(PretrainedName)}, got {name!r}")
    file_name, expected = PRETRAINED[name]
    bundled = resources.files("digitrec") / "_weights" / file_name
    with resources.as_file(bundled) as path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ChecksumError(
                f"the bundled model {name!r} is corrupt (sha256 {digest}, expected {expected}); "
                "reinstall digitrec with 'pip install --force-reinstall --no-deps digitrec'"
            )
        return load(path, device=device)
