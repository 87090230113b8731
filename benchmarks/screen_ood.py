"""Screen out-of-distribution scores on the development sets (bench_ood's held-out sets never).

The alternatives behind the user guide's out-of-distribution section, re-runnable.
Each bundled network ("mnist-cnn", "mnist-mlp", without its shipped statistics) is
scored against 5,000 MNIST test images and against sets built by ``bench_ood.py``'s
generators with the development seeds 101 to 104 (never its held-out seeds 1 to 4):

* the detector's four terms alone, and their standardised sum (the shipped method),
  with kNN banks of 600, 5,000 and 20,000 training images;
* test-time augmentation (shifts of 2 px, rotations of 12°) added to the sum: the
  mean kNN distance, the mean energy and the KL divergence of the predictions
  over the augmented copies;
* a small CNN trained to tell training digits from synthetic outliers made of them
  (two digits' halves joined, shuffled quadrants, two digits overlaid, rotations),
  alone and added to the sum (``--discriminator-epochs 0`` skips it).

Statistics are fitted on the MNIST training images but 3,000 held out at random,
which standardise the terms; the discriminator trains on the same images. Results
go to ``ood_screen.{json,txt}``.

Example::

    python benchmarks/screen_ood.py
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import (
    RESULTS_DIR,
    Transcript,
    machine,
    machine_line,
    markdown_table,
    write_json,
)
from bench_ood import blank, characters, noise, scribbles
from torch import nn
from torch.nn import functional

import digitrec

# The screen measures the detector's own terms, so it reaches into its private module.
from digitrec.models import _ood_features as of

Terms = dict[str, torch.Tensor]
SHIPPED = ("knn", "pixel_knn", "gauss", "energy")
TTA = ("tta_knn", "tta_energy", "tta_kl")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=1000, help="images per development set")
    parser.add_argument("--banks", type=int, nargs="+", default=[600, 5000, 20_000])
    parser.add_argument("--discriminator-epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test: small sets and data")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.banks, args.discriminator_epochs = 100, [100, 400], 1
    if args.images < 2 or min(args.banks) < 1 or args.discriminator_epochs < 0:
        parser.error("--images must be at least 2, --banks positive, epochs not negative")
    return args


def shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return torch.roll(images, (dy, dx), (2, 3))


def rotated(images: torch.Tensor, degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(images.shape[0], 2, 3)
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    turned = functional.grid_sample(images.float(), grid, align_corners=False)
    return turned.round().clamp(0, 255).to(torch.uint8)


AUGMENTATIONS: list[Callable[[torch.Tensor], torch.Tensor]] = [
    lambda x: shifted(x, 2, 0),
    lambda x: shifted(x, -2, 0),
    lambda x: shifted(x, 0, 2),
    lambda x: shifted(x, 0, -2),
    lambda x: rotated(x, 12),
    lambda x: rotated(x, -12),
]


class Screen:
    """The terms of one network against one fitted subsample, for any image batch."""

    def __init__(
        self, model: digitrec.DigitClassifier, fit: digitrec.ImageDataset, banks: list[int]
    ) -> None:
        self.model = model
        features = self.features(fit.images)
        self.gaussians = of.fit_gaussians(
            features.pixels[:20_000], fit.labels[:20_000], model.num_classes
        )
        self.banks = {
            size: (of.Bank(features.network[:size]), of.Bank(features.small[:size]))
            for size in banks
        }

    def features(self, images: torch.Tensor) -> of.Features:
        return of.features_in_batches(self.model, images, torch.device("cpu"), 1024)[0]

    def terms(
        self, images: torch.Tensor, extra: Callable[[torch.Tensor], torch.Tensor] | None
    ) -> Terms:
        found = self.features(images)
        terms: Terms = {
            "gauss": self.gaussians.distance(found.pixels),
            "energy": of.energy(found.logits),
        }
        for size, (network, small) in self.banks.items():
            terms[f"knn@{size}"] = network.kth_distance(found.network, 1)
            terms[f"pixel_knn@{size}"] = small.kth_distance(found.small, 1)
        largest = self.banks[max(self.banks)][0]
        probabilities = found.logits.softmax(1)
        knn, energy, kl = [], [], []
        for augment in AUGMENTATIONS:
            moved = self.features(augment(images))
            knn.append(largest.kth_distance(moved.network, 1))
            energy.append(of.energy(moved.logits))
            log_moved = moved.logits.log_softmax(1)
            kl.append((probabilities * (probabilities.clamp_min(1e-12).log() - log_moved)).sum(1))
        terms["tta_knn"] = torch.stack(knn).mean(0)
        terms["tta_energy"] = torch.stack(energy).mean(0)
        terms["tta_kl"] = torch.stack(kl).mean(0)
        if extra is not None:
            terms["discriminator"] = extra(images)
        return terms


def outliers(images: torch.Tensor, pool: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Synthetic outliers made of digits: joined halves, shuffled quadrants, overlays, turns."""
    count = images.shape[0]
    kind = torch.randint(0, 4, (count,), generator=generator)
    others = pool[torch.randint(0, pool.shape[0], (count,), generator=generator)]
    cut = torch.randint(10, 19, (count, 1, 1, 1), generator=generator)
    rows = torch.arange(28).view(1, 1, 28, 1)
    cols = torch.arange(28).view(1, 1, 1, 28)
    across = torch.rand(count, 1, 1, 1, generator=generator) < 0.5
    lower = torch.where(across, rows >= cut, cols >= cut)
    joined = torch.where(lower, others, images)
    quarters = torch.stack(
        [
            images[..., :14, :14],
            images[..., :14, 14:],
            images[..., 14:, :14],
            images[..., 14:, 14:],
        ],
        1,
    )
    order = torch.stack([torch.randperm(4, generator=generator) for _ in range(count)])
    quarters = quarters[torch.arange(count).view(-1, 1), order]
    shuffled = torch.cat(
        [
            torch.cat([quarters[:, 0], quarters[:, 1]], -1),
            torch.cat([quarters[:, 2], quarters[:, 3]], -1),
        ],
        -2,
    )
    overlaid = torch.maximum(images, others)
    turned = torch.rot90(images, int(torch.randint(1, 4, (1,), generator=generator)), (2, 3))
    choices = torch.stack([joined, shuffled, overlaid, turned])
    return choices[kind, torch.arange(count)]


def discriminator(
    train: torch.Tensor, epochs: int, seed: int = 0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Train a small CNN to tell ``train`` digits from :func:`outliers`; return its scorer."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    pool = train.float() / 255.0
    network = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 1),
    )
    optimizer = torch.optim.Adam(network.parameters(), 2e-3)
    for _ in range(epochs):
        for batch in torch.split(torch.randperm(pool.shape[0], generator=generator), 128):
            digits = pool[batch]
            inputs = torch.cat([digits, outliers(digits, pool, generator)])
            targets = torch.cat([torch.zeros(len(batch)), torch.ones(len(batch))])
            loss = functional.binary_cross_entropy_with_logits(network(inputs).squeeze(1), targets)
            optimizer.zero_grad()
            torch.autograd.backward(loss)
            optimizer.step()
    network.eval()

    def score(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            parts = [network(part.float() / 255.0).squeeze(1) for part in torch.split(images, 2000)]
        return torch.cat(parts)

    return score


def standardised(
    terms: Terms, chosen: tuple[str, ...], stats: dict[str, tuple[float, float]]
) -> torch.Tensor:
    """The sum of the ``chosen`` terms, each standardised by its held-out mean and spread."""
    total = torch.zeros(terms["energy"].shape[0], dtype=torch.float64)
    for term in chosen:
        total += (terms[term].double() - stats[term][0]) / stats[term][1]
    return total.float()


def combinations(banks: list[int], has_discriminator: bool) -> list[tuple[str, tuple[str, ...]]]:
    largest = max(banks)

    def shipped(size: int) -> tuple[str, ...]:
        return (f"knn@{size}", f"pixel_knn@{size}", "gauss", "energy")

    named: list[tuple[str, tuple[str, ...]]] = [
        (f"kNN, network features ({largest:,})", (f"knn@{largest}",)),
        (f"kNN, 7x7 pixels ({largest:,})", (f"pixel_knn@{largest}",)),
        ("class Gaussians, pixels", ("gauss",)),
        ("energy", ("energy",)),
    ]
    named += [(f"the four terms, bank {size:,}", shipped(size)) for size in banks]
    named += [(f"the four terms + {term}", (*shipped(largest), term)) for term in TTA]
    if has_discriminator:
        named += [
            ("discriminator alone", ("discriminator",)),
            ("the four terms + discriminator", (*shipped(largest), "discriminator")),
        ]
    return named


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    transcript = Transcript()
    say = transcript.say

    say(machine_line())
    started = time.perf_counter()
    count = args.images
    sets = {
        "letters & symbols": characters(count, seed=101)[0],
        "noise": noise(count, seed=102),
        "blank & near-blank": blank(count, seed=103),
        "scribbles": scribbles(count, seed=104),
    }
    train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
    if args.quick:
        train, test = train[:2000], test[:500]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    held = max(2, min(3000, len(train) // 10))
    fit, val = train[order[:-held]], train[order[-held:]]
    test = test[:5000]
    extra = (
        discriminator(fit.images, args.discriminator_epochs) if args.discriminator_epochs else None
    )
    results: dict[str, Any] = {}
    for name in ("mnist-cnn", "mnist-mlp"):
        model = digitrec.pretrained(name)
        model.ood = None
        screen = Screen(model, fit, [min(size, len(fit)) for size in args.banks])
        banks = sorted(screen.banks)
        reference = screen.terms(val.images, extra)
        stats = {
            term: (float(v.double().mean()), float(v.double().std()))
            for term, v in reference.items()
        }
        inside = screen.terms(test.images, extra)
        outside = {kind: screen.terms(images, extra) for kind, images in sets.items()}

        rows: list[list[str]] = []
        measured: dict[str, dict[str, dict[str, float]]] = {}
        for label, chosen in combinations(banks, extra is not None):
            metrics = {
                kind: digitrec.ood_metrics(
                    standardised(inside, chosen, stats), standardised(terms, chosen, stats)
                )
                for kind, terms in outside.items()
            }
            measured[label] = {
                kind: {"auroc": a, "fpr_at_95_tpr": f} for kind, (a, f) in metrics.items()
            }
            rows.append([label] + [f"{a:.4f} / {f:.3f}" for a, f in metrics.values()])
        results[name] = measured
        say()
        say(f"{name} (development sets, {count} images each; AUROC / FPR at 95% TPR)")
        say(markdown_table(["score", *list(sets)], rows))
    say()
    say(f"Screened in {time.perf_counter() - started:.0f} s")
    output = {
        "machine": machine(),
        "settings": {
            "images_per_set": count,
            "banks": args.banks,
            "discriminator_epochs": args.discriminator_epochs,
            "quick": args.quick,
            "seeds": [101, 102, 103, 104],
        },
        "results": results,
    }
    path = write_json(args.out, "ood_screen", output)
    transcript.write(args.out, "ood_screen")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
