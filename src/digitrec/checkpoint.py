"""Compatibility alias: model files live in :mod:`digitrec.models.files`.

``from digitrec.checkpoint import save, load`` keeps working; new code imports
them from ``digitrec`` itself.
"""

from .data import dataset_sha256
from .models.files import MODEL_FORMAT, load, read_metadata, save

__all__ = ["MODEL_FORMAT", "dataset_sha256", "load", "read_metadata", "save"]
