"""
Sample predictions, mistakes marked
===================================

:func:`~digitrec.plotting.plot_predictions` shows images with the label the model
predicted and the actual one. A wrong prediction gets a red title and a thick red
frame, so mistakes stand out without relying on colour alone.
"""

# %%
# Train the notebook's network for a few epochs on the bundled MNIST.
# sphinx_gallery_thumbnail_number = 2
import digitrec
from digitrec.plotting import plot_predictions

train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
model = digitrec.DigitClassifier("mlp", seed=0)
history = digitrec.Trainer(model, recipe="mlp-fast", progress=False).fit(train)
print(digitrec.evaluate_accuracy(model, test))

# %%
# The first 16 test images: most, often all, are right.
plot_predictions(model, test, count=16, columns=8)

# %%
# The mistakes are more instructive. Select them by index and plot those: an
# :class:`~digitrec.ImageDataset` indexed with a tensor of indices is a data set again.
predicted = digitrec.predict(model, test)
wrong = (predicted != test.labels).nonzero().flatten()
print(f"{len(wrong)} of {len(test)} test images are misclassified; the first 16:")
plot_predictions(model, test[wrong[:16]], count=16, columns=8)
