"""From a folder of images and a CSV with patient identifiers to a calibrated, validated model.

NOT FOR CLINICAL USE. This script is for research and education only.

The steps, through digitrec's public API:

1. write a small folder of PNG-free ``.npy`` images and a ``labels.csv`` with a
   ``patient`` column (from PneumoniaMNIST when it is beside the checkout,
   otherwise synthetic), or use your own folder with ``--csv``;
2. read it with ``ImageDataset.from_csv(..., group_column="patient")``;
3. split off a test part and a validation part **by patient**
   (``digitrec.data.group_split``), so no patient is on two sides;
4. train the CNN on the training part, calibrate it on the validation part;
5. choose the threshold for 95% sensitivity on the validation part and measure
   it on the test part;
6. report the test figures with 95% bootstrap intervals over patients.

Examples:
    python examples/medical_from_folder.py
    python examples/medical_from_folder.py --csv my_images/labels.csv --epochs 15
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import digitrec
from digitrec.data import group_split
from digitrec.evaluation import bootstrap_ci, choose_threshold, measure_threshold

NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
CAVEAT = "NOT FOR CLINICAL USE: research and education only."


def write_example_folder(folder: Path, images_count: int, seed: int) -> Path:
    """Write ``images_count`` images, 1 to 4 per patient, and their labels.csv; return it."""
    rng = np.random.default_rng(seed)
    if NPZ.exists():
        source = digitrec.ImageDataset.from_npz(NPZ, "train")
        chosen = rng.choice(len(source), images_count, replace=False)
        pixels = source.images[chosen, 0].numpy()
        labels = source.labels[chosen].numpy()
    else:
        labels = (rng.random(images_count) < 0.7).astype(np.int64)
        pixels = rng.integers(0, 120, (images_count, 28, 28)).astype(np.uint8)
        pixels[labels == 1, 8:20, 8:20] += 90
    names = ["normal", "pneumonia"]
    rows = ["file,label,patient"]
    patient, left = 0, 0
    for index in range(images_count):
        if left == 0:
            patient, left = patient + 1, int(rng.integers(1, 5))
        left -= 1
        name = f"img{index:05d}.npy"
        np.save(folder / name, pixels[index])
        rows.append(f"{name},{names[int(labels[index])]},patient-{patient:04d}")
    table = folder / "labels.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the example; return 0 on success and 1 if digitrec refused the data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--csv", type=Path, help="a CSV with file, label and patient columns")
    parser.add_argument("--images", type=int, default=1200, help="images in the generated folder")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(CAVEAT)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            table = args.csv or write_example_folder(Path(scratch), args.images, args.seed)
            data = digitrec.ImageDataset.from_csv(table, group_column="patient", size=28)
            assert data.groups is not None
            print(
                f"{len(data)} images of {len(set(data.groups.tolist()))} patients, "
                f"classes {data.class_names}"
            )
        rest, test = group_split(data, val_size=0.25, seed=args.seed, stratify=True)
        train, val = group_split(rest, val_size=0.2, seed=args.seed, stratify=True)
        print(f"by patient: train {len(train)}, val {len(val)}, test {len(test)} images")

        model = digitrec.DigitClassifier(
            "cnn",
            input_shape=train.image_shape,
            num_classes=len(data.class_names or ()),
            class_names=data.class_names,
            seed=args.seed,
        )
        digitrec.Trainer(
            model, epochs=args.epochs, seed=args.seed, class_weights="balanced", progress=False
        ).fit(train)
        temperature = digitrec.calibrate(model, val)
        print(f"temperature fitted on val: {temperature:.3f}")
        print(digitrec.evaluate(model, test))

        point = choose_threshold(model, val, sensitivity=0.95)
        print(f"chosen on val: {point}")
        print(f"on test:       {measure_threshold(model, test, point)}")
        print(bootstrap_ci(model, test, n_resamples=args.resamples, seed=args.seed))
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
