"""Train a model, save it safely, load it back and predict: a model's trip to deployment.

The file is safetensors (weights as plain tensors; loading cannot run code) with a
JSON header that records what is needed to rebuild and trust the model: its
config, class names, normalization and calibration temperature, the library
versions, and here also the training settings, the training data's sha256 and the
test accuracy. The loaded model predicts bit-identically to the one that was saved.

Examples:
    python examples/save_load_predict.py
    python examples/save_load_predict.py --output models/mlp.safetensors --count 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

import digitrec


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output",
        type=Path,
        help="where to save the model (default: a temporary folder, removed at the end)",
    )
    parser.add_argument("--count", type=int, default=8, help="test digits to predict (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    return parser


def run(output: Path, count: int, seed: int) -> None:
    """Train with the "mlp-fast" recipe, save, load, compare and predict."""
    train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
    model = digitrec.DigitClassifier("mlp", class_names=digitrec.MNIST_CLASSES, seed=seed)
    trainer = digitrec.Trainer(model, recipe="mlp-fast", seed=seed, progress=False)
    history = trainer.fit(train)
    result = digitrec.evaluate_accuracy(model, test)
    seconds = sum(history.epoch_seconds)
    print(f"Trained in {seconds:.2f} s: {100 * result.accuracy:.2f}% on the test set")

    path = digitrec.save(
        model,
        output,
        metadata={
            "training": trainer.config.to_dict(),
            "train_sha256": digitrec.dataset_sha256(train.images, train.labels),
            "test_accuracy": result.accuracy,
        },
    )
    print(f"Saved to {path} ({path.stat().st_size:,} bytes)")

    restored = digitrec.load(path)
    same = torch.equal(digitrec.predict_proba(restored, test), digitrec.predict_proba(model, test))
    print(f"Loaded model predicts bit-identically: {same}")

    header = digitrec.read_metadata(path)
    print(
        "Header:", json.dumps({k: header[k] for k in ("format", "config", "versions")}, indent=None)
    )
    print()
    for index in range(min(count, len(test))):
        image, actual = test[index]
        label = digitrec.get_predicted_label(restored, image)
        print(f"image {index}: predicted {label}, actual {actual}")


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns the exit status (1 if digitrec refused something)."""
    args = build_parser().parse_args(argv)
    try:
        if args.output is not None:
            run(args.output, args.count, args.seed)
        else:
            with tempfile.TemporaryDirectory() as folder:
                run(Path(folder) / "mlp.safetensors", args.count, args.seed)
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
