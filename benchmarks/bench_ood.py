"""Out-of-distribution detection: max-softmax, energy and fitted statistics, side by side.

For the MNIST "cnn" and "mlp" models, each out-of-distribution set below is scored
against the 10,000 MNIST test images with three scores: max-softmax (negated, so that
higher means out of distribution), energy (``ood_scores`` without statistics) and the
fitted score (``fit_ood`` on the training images, then ``ood_scores``; a loaded
model that carries statistics, like the bundled ones, is scored with its own). Reported: AUROC
and FPR at 95% TPR (``ood_metrics``) per set and score, the share of test images the
fitted threshold accepts, and the test accuracy (unchanged: scoring changes no
prediction). For the letters and symbols it also counts, per character, how many
images the fitted threshold lets through, and draws up to 24 of them per model in
``ood_accepted.png``: what the misses look like. The "cnn" is then scored once more
with statistics fitted in the run on a larger kNN bank (``--large-bank``, by default
fit_ood's largest, 20,000 training images): what a user gains from a model file too
large to ship in the wheel. The sets are built here, seeded:

1. letters and symbols rendered from the machine's TrueType fonts (Pillow's bundled
   scalable font if there are none), white on black, fitted in a 20x20 box and centred
   by mass in 28x28 like MNIST, with random font, stroke thickness, rotation (±20°) and
   shift (±2 px); characters that look like digits are left out (``EXCLUDED``);
2. noise: half uniform, half Gaussian with random mean and spread;
3. blank and near-blank: constant images of every grey level, black with 1-5 dots;
4. scribbles: one stroke through 5-9 random points, of random width, framed the same way;
5. chest X-rays: the PneumoniaMNIST test split;
6. and the other way round, MNIST test digits against a "cnn" model trained on
   PneumoniaMNIST (in distribution: its test split).

The seeds here (1 to 4) are not those the method was chosen with: its development
used the same generators with seeds 101 to 104, and nothing is ever fitted on these
sets (``fit_ood`` sees MNIST training images only).

Sets 5 and 6 need ``../shared/data/medmnist/pneumoniamnist.npz``; without it they are
skipped.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    Transcript,
    machine,
    machine_line,
    markdown_table,
    write_json,
)
from PIL import Image, ImageDraw, ImageFont

import digitrec

PNEUMONIA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
)
SCORES = ("max-softmax", "energy", "fitted")
CHARACTER_SET = "letters & symbols"

# Characters that look like a digit in some common handwriting or typeface, left out so
# that the set measures "not a digit" rather than "a digit in disguise":
# O o Q (0); I i l | ! / \ ( ) (1, a single upright or slanted stroke); Z z (2);
# S s $ (5); b G (6); B (8); g q (9).
EXCLUDED = "OoQIil|!/\\()ZzSs$bGBgq"
LETTERS = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in EXCLUDED]
SYMBOLS = [c for c in "+-*=?#@%&<>[]{}~^" if c not in EXCLUDED]
CHARACTERS = LETTERS + SYMBOLS

FONT_DIR = Path("/usr/share/fonts")


def fonts(size: int) -> list[ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """The TrueType fonts on this machine, or Pillow's bundled scalable default font."""
    found = sorted(FONT_DIR.rglob("*.ttf")) if FONT_DIR.is_dir() else []
    chosen: list[ImageFont.FreeTypeFont | ImageFont.ImageFont] = [
        ImageFont.truetype(str(path), size) for path in found
    ]
    return chosen or [ImageFont.load_default(size=size)]


def mnist_frame(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fit white-on-black ``glyph`` in a 20x20 box, centre it by mass in 28x28, jitter it."""
    ys, xs = np.nonzero(glyph > 0)
    if len(ys) == 0:
        return np.zeros((28, 28), np.uint8)
    crop = glyph[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    height, width = crop.shape
    scale = 20.0 / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = np.asarray(
        Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.LANCZOS), np.float64
    )
    small = np.clip(small, 0, 255)
    total = small.sum()
    cy = (small.sum(1) * np.arange(new_h)).sum() / total
    cx = (small.sum(0) * np.arange(new_w)).sum() / total
    top = round(14 - cy + int(rng.integers(-2, 3)))
    left = round(14 - cx + int(rng.integers(-2, 3)))
    top = min(max(top, 0), 28 - new_h)
    left = min(max(left, 0), 28 - new_w)
    out = np.zeros((28, 28), np.float64)
    out[top : top + new_h, left : left + new_w] = small
    return np.clip(out, 0, 255).astype(np.uint8)


def characters(count: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """Letters and symbols in MNIST framing: random font, thickness, rotation and position.

    Returns the images and the character drawn in each.
    """
    rng = np.random.default_rng(seed)
    faces = fonts(72)
    images = np.zeros((count, 28, 28), np.uint8)
    drawn: list[str] = []
    for index in range(count):
        char = CHARACTERS[rng.integers(len(CHARACTERS))]
        drawn.append(char)
        face = faces[rng.integers(len(faces))]
        canvas = Image.new("L", (160, 160), 0)
        draw = ImageDraw.Draw(canvas)
        stroke = int(rng.integers(0, 3))
        draw.text(
            (80, 80), char, fill=255, font=face, anchor="mm", stroke_width=stroke, stroke_fill=255
        )
        canvas = canvas.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BILINEAR)
        images[index] = mnist_frame(np.asarray(canvas), rng)
    return torch.from_numpy(images).unsqueeze(1), drawn


def noise(count: int, seed: int) -> torch.Tensor:
    """Half uniform noise, half Gaussian noise (random mean and spread), clipped to 0-255."""
    gen = torch.Generator().manual_seed(seed)
    half = count // 2
    uniform = torch.randint(0, 256, (half, 1, 28, 28), generator=gen, dtype=torch.uint8)
    mean = torch.rand(count - half, 1, 1, 1, generator=gen) * 255
    std = 10 + torch.rand(count - half, 1, 1, 1, generator=gen) * 90
    gauss = (mean + std * torch.randn(count - half, 1, 28, 28, generator=gen)).clamp(0, 255)
    return torch.cat([uniform, gauss.round().to(torch.uint8)])


def blank(count: int, seed: int) -> torch.Tensor:
    """Constant images (black to white) and near-blank ones: black with a few bright dots."""
    gen = torch.Generator().manual_seed(seed)
    half = count // 2
    levels = torch.randint(0, 256, (half, 1, 1, 1), generator=gen)
    constant = levels.expand(half, 1, 28, 28).to(torch.uint8).clone()
    dots = torch.zeros(count - half, 1, 28, 28, dtype=torch.uint8)
    for index in range(count - half):
        many = int(torch.randint(1, 6, (1,), generator=gen))
        where = torch.randint(4, 24, (many, 2), generator=gen)
        dots[index, 0, where[:, 0], where[:, 1]] = 255
    return torch.cat([constant, dots])


def scribbles(count: int, seed: int) -> torch.Tensor:
    """Random strokes: a polyline through 5 to 9 random points, of random width, framed."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    for index in range(count):
        canvas = Image.new("L", (112, 112), 0)
        draw = ImageDraw.Draw(canvas)
        points = [tuple(p) for p in rng.uniform(8, 104, (int(rng.integers(5, 10)), 2))]
        draw.line(points, fill=255, width=int(rng.integers(6, 14)), joint="curve")
        images[index] = mnist_frame(np.asarray(canvas), rng)
    return torch.from_numpy(images).unsqueeze(1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--model", type=Path, help="a saved MNIST 'cnn' model to use instead of training one"
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs of the MNIST 'cnn' (default: the recipe's 15)"
    )
    parser.add_argument(
        "--images", type=int, default=2000, help="images per out-of-distribution set"
    )
    parser.add_argument(
        "--mlp-model", type=Path, help="a saved MNIST 'mlp' model to use instead of training one"
    )
    parser.add_argument(
        "--large-bank",
        type=int,
        default=20_000,
        help="also score the MNIST 'cnn' with statistics fitted here on a kNN bank of this "
        "many training images (fit_ood's largest; 0 to skip)",
    )
    parser.add_argument("--pneumonia", type=Path, default=PNEUMONIA, help="PneumoniaMNIST .npz")
    parser.add_argument(
        "--xray-epochs", type=int, help="epochs of the PneumoniaMNIST 'cnn' (default: 15)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: tiny training, 200 images a set"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="folder for ood.json, ood.txt and ood_accepted.png",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images = 200
    if args.images < 2 or (args.epochs is not None and args.epochs < 1) or args.large_bank < 0:
        parser.error("--images must be at least 2, --epochs positive, --large-bank not negative")
    return args


def train_model(
    arch: digitrec.Architecture,
    train: digitrec.ImageDataset,
    epochs: int | None,
    num_classes: int = 10,
) -> tuple[digitrec.DigitClassifier, float]:
    model = digitrec.DigitClassifier(arch, num_classes=num_classes, seed=0)
    started = time.perf_counter()
    digitrec.Trainer(model, progress=False, epochs=epochs).fit(train)
    return model, time.perf_counter() - started


def compare(
    model: digitrec.DigitClassifier,
    train: digitrec.ImageDataset,
    test: digitrec.ImageDataset,
    sets: dict[str, torch.Tensor],
    kinds: list[str] | None = None,
    bank_size: int | None = None,
) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Score ``test`` and every set three ways; return the metrics and the detector's facts.

    Also returns which letters and symbols the fitted threshold accepts, when that set
    is among ``sets``.

    ``kinds``: the character of each image of the letters and symbols, when that set
    is among ``sets``. ``bank_size``: fit statistics here with kNN banks of that many
    training images, even for a model that carries its own.
    """
    # A model that carries statistics (the bundled ones) is scored with its own unless
    # a bank size is asked for; others get statistics fitted here, on the training images.
    shipped = getattr(model, "ood", None)
    started = time.perf_counter()
    if shipped is not None and bank_size is None:
        detector = shipped
    else:
        detector = digitrec.fit_ood(model, train, bank_size=bank_size)
    fit_seconds = time.perf_counter() - started
    accuracy = float((digitrec.predict(model, test) == test.labels).double().mean())
    model.ood = None  # the energy column: no statistics

    def scores(images: Any) -> dict[str, torch.Tensor]:
        # Every score sees the same pixels: the sets are framed like MNIST already.
        probabilities = digitrec.predict_proba(model, images, prepare=False)
        return {
            "max-softmax": -probabilities.max(dim=1).values,
            "energy": digitrec.ood_scores(model, images),
            "fitted": digitrec.ood_scores(model, images, detector=detector),
        }

    try:
        inside = scores(test)
        outsides = {name: scores(images) for name, images in sets.items()}
    finally:
        model.ood = shipped
    per_set: dict[str, dict[str, dict[str, float]]] = {}
    accepted: dict[str, torch.Tensor] = {}
    for name, outside in outsides.items():
        per_set[name] = {}
        for score in SCORES:
            auroc, fpr = digitrec.ood_metrics(inside[score], outside[score])
            per_set[name][score] = {"auroc": auroc, "fpr_at_95_tpr": fpr}
        accepted[name] = outside["fitted"] <= detector.threshold
    facts: dict[str, Any] = {
        "test_accuracy": accuracy,
        "test_accepted_by_threshold": float(
            (inside["fitted"] <= detector.threshold).double().mean()
        ),
        "statistics": "shipped with the model" if detector is shipped else "fitted here",
        "fit_seconds": fit_seconds,
        "statistics_bytes": sum(
            t.numel() * t.element_size() for t in detector.state_tensors().values()
        ),
        "detector": detector.description(),
        "sets": per_set,
        "accepted_by_threshold": {
            name: float(mask.double().mean()) for name, mask in accepted.items()
        },
        "accepted_characters": accepted_characters(accepted[CHARACTER_SET], kinds)
        if kinds is not None
        else None,
    }
    return facts, accepted.get(CHARACTER_SET)


def accepted_characters(mask: torch.Tensor, kinds: list[str]) -> list[dict[str, Any]]:
    """Per character: how many of its images the fitted threshold accepts, most often first."""
    totals = Counter(kinds)
    passed = Counter(kind for kind, ok in zip(kinds, mask.tolist(), strict=True) if ok)
    rows = [
        {"character": char, "accepted": passed[char], "images": totals[char]}
        for char in totals
        if passed[char]
    ]
    return sorted(
        rows, key=lambda row: (-row["accepted"] / row["images"], -row["accepted"], row["character"])
    )


def accepted_line(result: dict[str, Any], shown: int = 12) -> str:
    """What the fitted threshold lets through of the letters and symbols, by character."""
    rows = result["accepted_characters"] or []
    share = result["accepted_by_threshold"][CHARACTER_SET]
    most = ", ".join(f"{r['character']} {r['accepted']}/{r['images']}" for r in rows[:shown])
    return (
        f"The fitted threshold accepts {share:.1%} of the letters & symbols; by character, "
        f"most often: {most or 'none'} ({len(rows)} characters in all)"
    )


def accepted_grid(sets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> Image.Image:
    """One row of up to 24 accepted letters and symbols per model, 3x enlarged, grey gaps."""
    images = sets[CHARACTER_SET]
    columns, cell = 24, 30
    grid = np.full((cell * len(masks), cell * columns), 64, np.uint8)
    for row, mask in enumerate(masks.values()):
        chosen = torch.nonzero(mask).flatten()[:columns].tolist()
        for column, index in enumerate(chosen):
            top, left = row * cell + 1, column * cell + 1
            grid[top : top + 28, left : left + 28] = images[index, 0].numpy()
    picture = Image.fromarray(grid)
    return picture.resize((picture.width * 3, picture.height * 3), Image.Resampling.NEAREST)


def table(result: dict[str, Any]) -> str:
    headers = ["set"] + [f"{score} AUROC / FPR95" for score in SCORES]
    rows = [
        [name] + [f"{m[s]['auroc']:.4f} / {m[s]['fpr_at_95_tpr']:.3f}" for s in SCORES]
        for name, m in result["sets"].items()
    ]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    transcript = Transcript()
    say = transcript.say

    args.out.mkdir(parents=True, exist_ok=True)
    say(machine_line())
    train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
    cnn_train = train[:500] if args.quick else train
    # The images the MNIST models are scored with (and statistics fitted on, when fitted).
    scored_train = train[:2000] if args.quick else train
    scored_test = test[:2000] if args.quick else test
    count = args.images
    glyphs, kinds = characters(count, seed=1)
    sets = {
        CHARACTER_SET: glyphs,
        "noise": noise(count, seed=2),
        "blank & near-blank": blank(count, seed=3),
        "scribbles": scribbles(count, seed=4),
    }
    has_pneumonia = args.pneumonia.is_file()
    if has_pneumonia:
        sets["chest X-rays"] = digitrec.ImageDataset.from_npz(args.pneumonia, "test").images
    else:
        say(f"PneumoniaMNIST not found at {args.pneumonia}: the X-ray sets are skipped")
    say(f"Excluded as digit-like: {' '.join(EXCLUDED)}")

    results: dict[str, Any] = {}
    models: dict[str, tuple[digitrec.DigitClassifier, str]] = {}
    masks: dict[str, torch.Tensor] = {}
    if args.model is not None:
        models["cnn"] = (digitrec.load(args.model), f"loaded from {args.model}")
    else:
        epochs = 1 if args.quick else args.epochs
        model, seconds = train_model("cnn", cnn_train, epochs)
        models["cnn"] = (model, f"trained {epochs or 15} epochs in {seconds:.0f} s")
    if args.mlp_model is not None:
        models["mlp"] = (digitrec.load(args.mlp_model), f"loaded from {args.mlp_model}")
    else:
        mlp, seconds = train_model(
            "mlp", train[:5000] if args.quick else train, 1 if args.quick else None
        )
        models["mlp"] = (mlp, f"trained {1 if args.quick else 10} epochs in {seconds:.0f} s")
    for name, (model, how) in models.items():
        result, mask = compare(model, scored_train, scored_test, sets, kinds)
        if mask is not None:
            masks[name] = mask
        result["model"] = how
        results[f"mnist-{name}"] = result
        say()
        say(
            f"MNIST {name} ({how}): test accuracy {result['test_accuracy']:.2%}; the fitted "
            f"threshold accepts {result['test_accepted_by_threshold']:.1%} of the test images; "
            f"statistics {result['statistics_bytes'] / 1e6:.2f} MB, "
            + (
                "shipped with the model"
                if result["statistics"] == "shipped with the model"
                else f"fitted in {result['fit_seconds']:.0f} s"
            )
        )
        say(table(result))
        say(accepted_line(result))
    accepted_grid(sets, masks).save(args.out / "ood_accepted.png")
    if args.large_bank:
        model, how = models["cnn"]
        result, _ = compare(
            model, scored_train, scored_test, sets, kinds, bank_size=args.large_bank
        )
        result["model"] = how
        results["mnist-cnn-large-bank"] = result
        banked = result["detector"]["bank_size"]
        say()
        say(
            f"MNIST cnn, the same network with statistics fitted here on a bank of {banked:,} "
            f"training images (fit_ood(bank_size={args.large_bank})): the fitted threshold "
            f"accepts {result['test_accepted_by_threshold']:.1%} of the test images; "
            f"statistics {result['statistics_bytes'] / 1e6:.2f} MB, too large to ship in the "
            f"wheel, fitted in {result['fit_seconds']:.0f} s"
        )
        say(table(result))
        say(accepted_line(result))
    if has_pneumonia:
        xray_train = digitrec.ImageDataset.from_npz(args.pneumonia, "train")
        xray_test = digitrec.ImageDataset.from_npz(args.pneumonia, "test")
        xray_epochs = 1 if args.quick else args.xray_epochs
        xray, seconds = train_model(
            "cnn", xray_train[:300] if args.quick else xray_train, xray_epochs, 2
        )
        result, _ = compare(xray, xray_train, xray_test, {"MNIST digits": test.images[:count]})
        result["model"] = f"trained {xray_epochs or 15} epochs in {seconds:.0f} s"
        results["pneumonia-cnn"] = result
        say()
        say(
            f"PneumoniaMNIST cnn ({result['model']}): test accuracy {result['test_accuracy']:.2%}; "
            f"the fitted threshold accepts {result['test_accepted_by_threshold']:.1%} "
            "of its test images"
        )
        say(table(result))
    output = {
        "machine": machine(),
        "settings": {
            "images_per_set": count,
            "quick": args.quick,
            "excluded": EXCLUDED,
            "model": str(args.model) if args.model else None,
            "epochs": args.epochs,
            "xray_epochs": args.xray_epochs,
            "large_bank": args.large_bank,
        },
        "results": results,
    }
    path = write_json(args.out, "ood", output)
    transcript.write(args.out, "ood")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
