"""Coverage-guided fuzzing (atheris) of digitrec's file readers.

The first byte picks the reader (IDX images, MedMNIST npz, model file, training
checkpoint); the rest is the file. Any exception other than a DigitrecError is a
crash that atheris reports with the input that caused it.

Run (CI runs a short, bounded session of it, from a corpus of valid files):
    python fuzz/fuzz_readers.py --make-seeds corpus/
    python fuzz/fuzz_readers.py -runs=5000 -max_len=65536 corpus/
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

# Instrument digitrec only: instrumenting torch too costs a minute of start-up.
with atheris.instrument_imports(include=["digitrec"]):
    import digitrec

FOLDER = Path(tempfile.mkdtemp(prefix="digitrec-fuzz-"))
LABELS = FOLDER / "labels.idx"
LABELS.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 0, 1]))
TARGET = FOLDER / "input"
_PIXELS = np.zeros((16, 8, 8), np.uint8)
_LABELS = np.arange(16) % 2


def _resume(path: Path) -> None:
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    data = digitrec.ImageDataset.from_arrays(_PIXELS, _LABELS)
    digitrec.Trainer(model, epochs=1, batch_size=8, progress=False).fit(data, resume_from=path)


READERS = [
    lambda path: digitrec.ImageDataset.from_idx(path, LABELS),
    lambda path: digitrec.ImageDataset.from_npz(path, "train"),
    lambda path: digitrec.load(path),
    _resume,
]


def test_one_input(data: bytes) -> None:
    """Feed one input to the reader its first byte picks; only DigitrecError may escape."""
    if not data:
        return
    TARGET.write_bytes(data[1:])
    with contextlib.suppress(digitrec.DigitrecError):
        READERS[data[0] % len(READERS)](TARGET)


def make_seeds(folder: Path) -> None:
    """Write one valid file per reader, prefixed with its selector byte, as the corpus."""
    import io

    folder.mkdir(parents=True, exist_ok=True)
    idx = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 8]) + bytes(128)
    npz = io.BytesIO()
    np.savez(npz, train_images=_PIXELS, train_labels=_LABELS.reshape(-1, 1))
    model = digitrec.DigitClassifier("mlp", input_shape=(1, 8, 8), num_classes=2, seed=0)
    digitrec.save(model, FOLDER / "model.safetensors")
    trainer = digitrec.Trainer(model, epochs=1, batch_size=8, progress=False)
    trainer.fit(digitrec.ImageDataset.from_arrays(_PIXELS, _LABELS))
    trainer.save_checkpoint(FOLDER / "run.safetensors")
    seeds = [
        idx,
        npz.getvalue(),
        (FOLDER / "model.safetensors").read_bytes(),
        (FOLDER / "run.safetensors").read_bytes(),
    ]
    for selector, content in enumerate(seeds):
        (folder / f"seed{selector}").write_bytes(bytes([selector]) + content)


def main() -> None:
    """Run atheris, or write the seed corpus with ``--make-seeds DIR``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
