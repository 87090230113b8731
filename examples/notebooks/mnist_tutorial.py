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
# # Handwritten digits, start to finish
#
# This is the classic MNIST notebook (a `Sequential` MLP 784-64-32-10 trained with
# cross-entropy and SGD on batches of 64) told again with digitrec: load the data, train
# the network, look at the loss curve, count how many test digits it gets right, look at
# its mistakes and classify a single image.
#
# The page you are reading was executed when the documentation was built, so every
# output below is real. The whole notebook runs in about half a minute on a 2-core CPU
# with no GPU; training uses the full `"mlp"` recipe (10 epochs, a few seconds).
#
# To run it yourself, open `examples/notebooks/mnist_tutorial.py` from a source checkout
# in Jupyter with [jupytext](https://jupytext.readthedocs.io) installed (it opens as a
# notebook), or convert it with `jupytext --to notebook examples/notebooks/mnist_tutorial.py`.
# The figures need the `plot` extra: `pip install "digitrec[plot]"`.

# %%
# %matplotlib inline
import digitrec
from digitrec.plotting import plot_loss_curve, plot_predictions

print("digitrec", digitrec.__version__)

# %% [markdown]
# ## 1. Load MNIST
#
# A copy of MNIST ships inside the package and is checked against the sha256 of the
# original files when it is read, so nothing is downloaded. The images stay raw `uint8`
# pixels: the model normalizes its own input, so there is no transform to keep in step.

# %%
train = digitrec.load_mnist("train")
test = digitrec.load_mnist("test")
print(f"{len(train)} training images, {len(test)} test images of shape {train.image_shape}")
image, label = train[0]
print(
    f"first training image: {image.dtype}, pixels {int(image.min())}-{int(image.max())}, "
    f"label {label}"
)

# %% [markdown]
# ## 2. Build the notebook's network
#
# `DigitClassifier("mlp")` is the notebook's network layer for layer. `seed=0` draws the
# same initial weights every time, so this page gives the same numbers on every build
# on the same machine.

# %%
model = digitrec.DigitClassifier("mlp", seed=0)
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# ## 3. Train
#
# `Trainer` takes its settings from the recipe named after the architecture: for `"mlp"`,
# the notebook's SGD with momentum on batches of 64, for 10 epochs, with a cosine
# learning-rate schedule. `progress=False` keeps this page quiet; the returned `History`
# holds the loss of every epoch.

# %%
trainer = digitrec.Trainer(model, progress=False)
print(trainer.config)
history = trainer.fit(train)
print(history)

# %% [markdown]
# ## 4. The loss curve
#
# `digitrec.plotting` builds matplotlib figures without `pyplot`; in a notebook the
# figure shows when it is the last value of a cell. In a script, save it with
# `figure.savefig("loss.png")`.

# %%
plot_loss_curve(history)

# %% [markdown]
# ## 5. How many test digits does it get right?
#
# `evaluate_accuracy` prints as the original notebook's summary.

# %%
print(digitrec.evaluate_accuracy(model, test))

# %% [markdown]
# ## 6. Predictions, with the mistakes marked
#
# `plot_predictions` shows images with their predicted and actual labels; a wrong
# prediction gets a red title and a thick red frame. Out of the first 16 test images the
# model usually gets all right, so here we also gather the first mistakes it makes.

# %%
plot_predictions(model, test, count=16, columns=8)

# %%
predicted = digitrec.predict(model, test)
wrong = (predicted != test.labels).nonzero().flatten()
print(f"{len(wrong)} mistakes among {len(test)} test images; the first few:")
plot_predictions(model, test[wrong[:8]], count=8, columns=8)

# %% [markdown]
# ## 7. One image at a time
#
# `get_predicted_label` classifies a single image: a tensor, a numpy array or a PIL
# image, `uint8` or float pixels. `predict_proba` gives the probabilities of a batch.

# %%
for index in range(5):
    image, actual = test[index]
    guess = digitrec.get_predicted_label(model, image)
    print(f"image {index}: predicted {guess}, actual {actual}")

probabilities = digitrec.predict_proba(model, test.images[:3])
print(probabilities.round(decimals=3))

# %% [markdown]
# ## Where next
#
# * Save the trained model with `digitrec.save(model, "mlp.safetensors")` and load it
#   anywhere with `digitrec.load`.
# * `DigitClassifier("cnn")` reaches about 99.6% with its own recipe (about two minutes on
#   a CPU).
# * The medical tutorial goes further: calibrated probabilities, per-class sensitivity
#   and specificity, abstention and explanations.
