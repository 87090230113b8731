"""Photographed digits in, MNIST framing out: what prepare_digits does, as a figure.

MNIST test digits are rendered as photographs and scans of dark ink on paper (any
size, off-centre, uneven light, noise, blur, JPEG, tinted RGB); each is shown above
what ``digitrec.prepare_digits`` makes of it. A small MLP trained on MNIST reads
the prepared digits far better than the raw photos stretched to 28x28.

Run:
    python examples/prepare_photos.py --output docs/_static/prepared_digits.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import digitrec
from digitrec._synthetic import render_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("prepared_digits.png"))
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()

    from matplotlib.figure import Figure

    test = digitrec.load_mnist("test")
    photos = render_photos(test.images[: args.count], seed=1)
    prepared = [digitrec.prepare_digits(photo) for photo in photos]

    figure = Figure(figsize=(1.3 * args.count, 3.0))
    axes = figure.subplots(2, args.count)
    for column, (photo, digit) in enumerate(zip(photos, prepared, strict=True)):
        axes[0, column].imshow(photo.numpy())
        axes[0, column].set_title(f"{photo.shape[1]}x{photo.shape[0]}", fontsize=8)
        axes[1, column].imshow(digit[0].numpy(), cmap="gray", vmin=0, vmax=1)
        for row in (0, 1):
            axes[row, column].set_axis_off()
    axes[0, 0].text(-0.3, 0.5, "photo", transform=axes[0, 0].transAxes, ha="right")
    axes[1, 0].text(-0.3, 0.5, "prepared", transform=axes[1, 0].transAxes, ha="right")
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"Saved {args.output}")

    model = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(model, epochs=2, progress=False).fit(digitrec.load_mnist("train"))
    many = render_photos(test.images[:500], seed=2)
    labels = test.labels[:500]
    stretched = torch.cat(
        [
            F.interpolate(
                (p.permute(2, 0, 1).float().mean(0, keepdim=True) / 255)[None],
                size=(28, 28),
                mode="bilinear",
                antialias=True,
            )
            for p in many
        ]
    )
    raw = (digitrec.predict(model, stretched, prepare=False) == labels).float().mean()
    framed = (digitrec.predict(model, list(many)) == labels).float().mean()
    print(f"500 rendered photos: stretched to 28x28 {100 * raw:.1f}%, prepared {100 * framed:.1f}%")


if __name__ == "__main__":
    main()
