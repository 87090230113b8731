# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chest X-rays: calibrated, reported, explained
#
# **Not for clinical use.** This tutorial is for research and education: MedMNIST is a
# benchmark, and neither it nor a model trained here is a medical device.
#
# A classifier in a medical pipeline has to say more than its accuracy. This tutorial
# trains digitrec's small CNN to tell normal chest X-rays from pneumonia
# ([PneumoniaMNIST](https://medmnist.com), 28x28 grayscale, CC BY 4.0) and then:
#
# 1. reports per-class sensitivity and specificity, ROC AUC and calibration (`digitrec.evaluate`);
# 2. fits a softmax temperature on the validation split so the probabilities can be
#    trusted (`digitrec.calibrate`), and shows it with a reliability diagram;
# 3. shows the confusion matrix;
# 4. abstains on the images the model is unsure about (`digitrec.predict_or_abstain`);
# 5. shows which pixels drove a decision (`digitrec.explain`, which needs the
#    `explain` extra: Captum).
#
# **Which data this page used.** PneumoniaMNIST is not bundled with digitrec. The
# notebook reads it from `$PNEUMONIAMNIST_NPZ`, from the medmnist package's folder
# (`~/.medmnist/pneumoniamnist.npz`) or from the project's `shared/data/medmnist` beside a
# checkout. When the file is nowhere to be found, it makes a **synthetic stand-in**
# instead (two classes of drawn, noisy "chest" images, one with bright patches in the
# lungs) so that every step still runs. The first output below says which one was used;
# the numbers of a stand-in say nothing about X-rays.
#
# The page was executed when the documentation was built. The whole notebook takes
# well under two minutes on a 2-core CPU: the CNN trains for 8 epochs instead of its
# recipe's 15 on PneumoniaMNIST's 4,708 training images, in about 10-25 s.
#
# To run it yourself, open `examples/notebooks/medical_tutorial.py` from a source
# checkout in Jupyter with jupytext installed, or convert it with
# `jupytext --to notebook examples/notebooks/medical_tutorial.py`. It needs the
# `plot` and `explain` extras: `pip install "digitrec[plot,explain]"`.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import digitrec
from digitrec.plotting import (
    plot_confusion_matrix,
    plot_explanation,
    plot_reliability_diagram,
)

CLASS_NAMES = ["normal", "pneumonia"]

# %% [markdown]
# ## 1. The data
#
# `ImageDataset.from_npz` reads MedMNIST's `.npz` layout (without unpickling anything)
# as raw `uint8` pixels; the model normalizes them itself. The stand-in goes through
# `ImageDataset.from_arrays`, which takes float pixels in `[0, 1]`.


# %%
def find_pneumoniamnist() -> Path | None:
    """Return the PneumoniaMNIST file, or None when it is nowhere to be found."""
    if "PNEUMONIAMNIST_NPZ" in os.environ:
        given = Path(os.environ["PNEUMONIAMNIST_NPZ"])
        return given if given.is_file() else None
    places = [Path.home() / ".medmnist"]
    places += [
        folder / "shared" / "data" / "medmnist" for folder in (Path.cwd(), *Path.cwd().parents)
    ]
    return next(
        (p / "pneumoniamnist.npz" for p in places if (p / "pneumoniamnist.npz").is_file()), None
    )


def synthetic_chest_xrays(count: int, seed: int) -> digitrec.ImageDataset:
    """Draw a stand-in: noisy chest-like images; "pneumonia" adds a hazy patch in a lung."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(count) < 0.7).astype(np.int64)
    y, x = np.mgrid[0:28, 0:28] / 27.0
    lungs = np.exp(-(((x - 0.3) / 0.13) ** 2 + ((y - 0.5) / 0.3) ** 2))
    lungs += np.exp(-(((x - 0.7) / 0.13) ** 2 + ((y - 0.5) / 0.3) ** 2))
    images = 0.75 - 0.45 * lungs + rng.normal(0.0, 0.06, (count, 28, 28))
    centre_x = rng.choice([0.3, 0.7], (count, 1, 1)) + rng.normal(0.0, 0.04, (count, 1, 1))
    centre_y = rng.uniform(0.35, 0.7, (count, 1, 1))
    radius = rng.uniform(0.08, 0.14, (count, 1, 1))
    strength = rng.uniform(0.1, 0.5, (count, 1, 1)) * labels[:, None, None]
    images += strength * np.exp(-((x - centre_x) ** 2 + (y - centre_y) ** 2) / radius**2)
    pixels = np.clip(images, 0.0, 1.0).astype(np.float32)
    return digitrec.ImageDataset.from_arrays(pixels, labels, class_names=CLASS_NAMES)


data_file = find_pneumoniamnist()
if data_file is not None:
    print(f"Data: PneumoniaMNIST from {data_file.name}")
    train, val, test = (
        digitrec.ImageDataset.from_npz(data_file, split, class_names=CLASS_NAMES)
        for split in ("train", "val", "test")
    )
else:
    print("Data: a SYNTHETIC STAND-IN (PneumoniaMNIST was not found); not real X-rays")
    train, val, test = (
        synthetic_chest_xrays(count, seed) for count, seed in ((2000, 0), (400, 1), (600, 2))
    )
for name, split in (("train", train), ("val", val), ("test", test)):
    counts = ", ".join(
        f"{label} {int((split.labels == index).sum())}" for index, label in enumerate(CLASS_NAMES)
    )
    print(f"  {name:<5} {len(split):5d} images of shape {split.image_shape}: {counts}")

# %% [markdown]
# ## 2. Train the CNN
#
# One output per class; the model carries the class names, so reports and figures use
# them. The `"cnn"` recipe trains with SGD, a cosine schedule and random affine
# augmentation for 15 epochs; to keep this page quick we train for 8 (the schedule
# follows), on one CPU thread, which on a small machine shared with other jobs is far
# faster than two. The full recipe gains about a point of accuracy.

# %%
model = digitrec.DigitClassifier(
    "cnn", input_shape=train.image_shape, num_classes=2, class_names=CLASS_NAMES, seed=0
)
trainer = digitrec.Trainer(model, epochs=8, num_threads=1, progress=False)
history = trainer.fit(train)
print(history)

# %% [markdown]
# ## 3. The report, before calibration
#
# `evaluate` gives what a clinical reader asks for. Sensitivity of "pneumonia" is the
# share of pneumonia cases found; specificity is the share of normal X-rays left alone.
# The expected calibration error (ECE) says how far the confidences are from the
# accuracy they promise.

# %%
before = digitrec.evaluate(model, test)
print(before)

# %%
plot_reliability_diagram(before)

# %% [markdown]
# ## 4. Calibration
#
# Temperature scaling divides the logits by one number fitted on the **validation**
# split (never the test split). Predicted labels do not change; probabilities do.

# %%
temperature = digitrec.calibrate(model, val)
report = digitrec.evaluate(model, test)
print(
    f"temperature {temperature:.3f}: ECE {before.ece:.4f} -> {report.ece:.4f}, "
    f"NLL {before.nll:.4f} -> {report.nll:.4f}"
)

# %%
plot_reliability_diagram(report)

# %% [markdown]
# ## 5. The confusion matrix
#
# Rows are the actual classes, columns the predicted ones. With `normalize=True` the
# diagonal holds each class's sensitivity.

# %%
plot_confusion_matrix(report, normalize=True)

# %% [markdown]
# ## 6. Abstention
#
# A model that may say "I am not sure" can refer hard cases to a person.
# `predict_or_abstain` returns `digitrec.ABSTAINED` (-1) for the images whose calibrated
# top probability is below `min_confidence`. The report's `accuracy_at_coverage` shows
# the same trade from the other side.

# %%
for min_confidence in (0.5, 0.8, 0.9, 0.95):
    labels = digitrec.predict_or_abstain(model, test, min_confidence=min_confidence)
    kept = labels != digitrec.ABSTAINED
    accuracy = (
        (labels[kept] == test.labels[kept]).float().mean().item() if kept.any() else float("nan")
    )
    print(
        f"min confidence {min_confidence:.2f}: abstained on {int((~kept).sum()):3d} of "
        f"{len(test)}, accuracy on the rest {100 * accuracy:.2f}%"
    )
print(
    {f"{coverage:.0%}": round(value, 4) for coverage, value in report.accuracy_at_coverage.items()}
)

# %% [markdown]
# ## 7. Explanations
#
# `explain` attributes the score of the predicted class to each pixel (integrated
# gradients by default). Red pixels pushed the model towards the class in the title,
# blue ones away from it. Attributions show what the model looked at, not whether it
# was right to: check them against what a radiologist would look at.


# %% tags=["remove-stderr"]
def explain_predictions(data: digitrec.ImageDataset) -> Figure:
    """Plot the attributions of the predicted class for each image, side by side."""
    attributions = digitrec.explain(model, data)
    predicted = digitrec.predict(model, data)
    figure = Figure(figsize=(4.2 * len(data), 3.6), layout="constrained")
    for index, ax in enumerate(figure.subplots(1, len(data), squeeze=False)[0]):
        image, actual = data[index]
        title = f"pred {CLASS_NAMES[int(predicted[index])]} / true {CLASS_NAMES[actual]}"
        plot_explanation(image, attributions[index], ax=ax, title=title)
    return figure


explain_predictions(test[:4])
