"""Every reader and writer of bytes on disk, one module per format.

``images`` reads PNG, JPEG, BMP, TIFF, WebP and ``.npy`` images (8- and 16-bit,
alpha composited, EXIF orientation applied), ``dicom`` DICOM files (the ``dicom``
extra: modality LUT, VOI window, MONOCHROME1), ``folders`` the listings of
labelled folders and CSV files, ``idx`` MNIST's IDX files, ``npz`` MedMNIST's
archives, ``tensorfile`` the safetensors-with-JSON-header files that model files
and training checkpoints are made of, and ``atomic`` writes any file so that a
crash leaves either the old file or the new one. Image readers return float32
``(C, H, W)`` tensors in ``[0, 1]``. Nothing here unpickles, and every reader
checks what a file claims (shapes, sizes) against what it holds before
allocating; every way a file can be unreadable is a
:class:`~digitrec.DataFileError` that names the file. The layers above (data
sets, models, training) turn these arrays into digitrec objects; nothing in
``io`` imports them.
"""

from .dicom import read_dicom
from .folders import LabelledFiles, scan_csv, scan_folder
from .images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ReadImagesResult,
    list_image_files,
    read_image,
    read_images,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "LabelledFiles",
    "ReadImagesResult",
    "list_image_files",
    "read_dicom",
    "read_image",
    "read_images",
    "scan_csv",
    "scan_folder",
]
