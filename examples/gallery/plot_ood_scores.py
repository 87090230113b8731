"""
Out-of-distribution scores: digits against everything else
==========================================================

A classifier gives a confident answer for anything it is shown. The bundled
``"mnist-mlp"`` carries statistics of its training data (:func:`digitrec.fit_ood`),
so :func:`digitrec.ood_scores` can tell test digits from images unlike them: noise,
blank pages and letters. The histograms show the scores; the dashed line is the
model's threshold, which accepts 95% of held-out training digits. Max-softmax
confidence, the usual guard, is shown beside it for the same images.
"""

# %%
# Images the model was never meant to see.
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

import digitrec

model = digitrec.pretrained("mnist-mlp")
assert model.ood is not None, "the bundled models carry fitted statistics"
threshold = model.ood.threshold
digits = digitrec.load_mnist("test").images[:1000]
rng = np.random.default_rng(0)
noise = torch.from_numpy(rng.random((300, 1, 28, 28), dtype=np.float32))
blank = torch.zeros(300, 1, 28, 28)


def letter(character: str, size: int) -> torch.Tensor:
    """A letter drawn white on black in MNIST's 28x28 frame."""
    canvas = Image.new("L", (28, 28))
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text((14, 14), character, fill=255, font=font, anchor="mm")
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)[None]


letters = torch.stack([letter(c, s) for c in "ACEFHKMNPRTUVWXY" for s in (18, 22, 26)])

# %%
# Scores and their histograms.
sets = {"MNIST test digits": digits, "noise": noise, "blank": blank, "letters": letters}
scores = {name: digitrec.ood_scores(model, images) for name, images in sets.items()}
confidence = {
    name: digitrec.predict_proba(model, images).max(dim=1).values for name, images in sets.items()
}


def histograms() -> Figure:
    """Scores (left) and max-softmax confidence (right) of each set."""
    figure = Figure(figsize=(10, 3.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    for name in sets:
        left.hist(scores[name].clamp(max=30).numpy(), bins=40, alpha=0.6, label=name)
        right.hist(confidence[name].numpy(), bins=40, alpha=0.6, label=name)
    left.axvline(threshold, color="black", linestyle="--", label="threshold")
    left.set(title="digitrec.ood_scores (clipped at 30)", xlabel="score", ylabel="images")
    right.set(title="max-softmax confidence", xlabel="confidence")
    left.legend()
    return figure


histograms()

# %%
# AUROC and the share of each set accepted at the threshold.
for name in ("noise", "blank", "letters"):
    auroc, fpr = digitrec.ood_metrics(scores["MNIST test digits"], scores[name])
    print(f"{name:8s} AUROC {auroc:.3f}  accepted at the threshold {fpr:.1%}")
