"""One digit, three file formats: 8-bit PNG, 16-bit PNG and 12-bit MONOCHROME1 DICOM.

MNIST test digits, enlarged to 56x56 (larger than the model's input), are written as
8-bit PNG, 16-bit PNG and DICOM (12 bits stored, rescale slope 2 and intercept -1024,
a VOI window, MONOCHROME1 so ink is stored dark), read back with ``digitrec.read_image``
and labelled through ``digitrec.predict`` (prepared as digits) by the bundled CNN,
trained on 8-bit images. Goal: accuracies within 2 points of the 8-bit PNG's.

Run:
    python benchmarks/bench_formats.py            # 1,000 digits
    python benchmarks/bench_formats.py --quick    # 100 digits (CI smoke test)
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, machine, machine_line, markdown_table, write_json
from PIL import Image

import digitrec


def png(pixels: np.ndarray, depth: int) -> bytes:
    buffer = io.BytesIO()
    scale, dtype = (255, np.uint8) if depth == 8 else (65535, np.uint16)
    Image.fromarray(np.round(pixels * scale).astype(dtype)).save(buffer, "PNG")
    return buffer.getvalue()


def dicom(pixels: np.ndarray) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    stored = np.round((1.0 - pixels) * 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = stored.shape
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
    ds.WindowCenter, ds.WindowWidth = 3071.5, 8191
    ds.PixelData = stored.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 digits")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.count
    test = digitrec.load_mnist("test")[:count]
    small = test.images.float() / 255.0
    large = torch.nn.functional.interpolate(small, size=(56, 56), mode="bilinear")
    digits: np.ndarray = large[:, 0].clamp(0, 1).numpy()
    model = digitrec.pretrained("mnist-cnn")
    writers: dict[str, Callable[[np.ndarray], bytes]] = {
        "8-bit PNG": lambda p: png(p, 8),
        "16-bit PNG": lambda p: png(p, 16),
        "12-bit DICOM, MONOCHROME1": dicom,
    }
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, write in writers.items():
            suffix = ".dcm" if "DICOM" in name else ".png"
            paths = []
            for index, pixels in enumerate(digits):
                path = Path(folder) / f"{len(accuracy)}_{index:04d}{suffix}"
                path.write_bytes(write(pixels))
                paths.append(path)
            predicted = digitrec.predict(model, paths)
            accuracy[name] = float((predicted == test.labels).float().mean())
    reference = accuracy["8-bit PNG"]
    rows = [
        [name, f"{100 * value:.2f}%", f"{100 * (value - reference):+.2f}"]
        for name, value in accuracy.items()
    ]
    met = all(abs(value - reference) <= 0.02 for value in accuracy.values())
    text = "\n".join(
        [
            machine_line(),
            f"{count} MNIST test digits at 56x56, bundled mnist-cnn, prepared as digits",
            markdown_table(["format", "accuracy", "points vs 8-bit"], rows),
            f"Goal (within 2 points of the 8-bit PNG): {'met' if met else 'NOT met'}",
        ]
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        (args.out / "formats.txt").write_text(text + "\n", encoding="utf-8")
    write_json(
        args.out,
        "formats",
        {
            "machine": machine(),
            "settings": {"quick": args.quick, "count": count},
            "accuracy": accuracy,
            "goal_met": met,
        },
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
