"""
Explanations: which pixels made the decision
============================================

:func:`digitrec.explain` attributes the model's score for a class to each pixel, and
:func:`~digitrec.plotting.plot_explanation` overlays the attributions on the image: red
pixels pushed the model towards the class, blue ones away from it. It needs the
``explain`` extra (Captum).

Three methods are offered: ``"integrated_gradients"`` (the default),
``"saliency"`` (the absolute gradient, one backward pass) and ``"occlusion"`` (how much
the score drops when a small window of the image is blacked out).
"""

# %%
# Train the notebook's network briefly.
import torch
from matplotlib.figure import Figure

import digitrec
from digitrec.plotting import plot_explanation

train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
model = digitrec.DigitClassifier("mlp", seed=0)
digitrec.Trainer(model, recipe="mlp-fast", progress=False).fit(train)

# %%
# One image, explained for the class the model predicts.
image, label = test[0]
predicted = digitrec.get_predicted_label(model, image)
plot_explanation(image, digitrec.explain(model, image), title=f"predicted {predicted}")

# %%
# The three methods side by side, on the first four test images: pass ``ax=`` to
# draw each explanation into a grid of your own.


def compare_methods(images: torch.Tensor, methods: list[digitrec.ExplainMethod]) -> Figure:
    """Explain each image with each method: one row per method."""
    figure = Figure(figsize=(3 * len(images), 2.7 * len(methods)), layout="constrained")
    grid = figure.subplots(len(methods), len(images), squeeze=False)
    for row, method in enumerate(methods):
        attributions = digitrec.explain(model, images, method=method)
        for column, image in enumerate(images):
            plot_explanation(image, attributions[column], ax=grid[row, column], title=method)
    return figure


compare_methods(test.images[:4], ["integrated_gradients", "saliency", "occlusion"])
