"""
Reliability diagram, before and after calibration
=================================================

A model's probabilities are *calibrated* when, among the images it labels with
confidence 0.9, nine in ten are right. :func:`~digitrec.plotting.plot_reliability_diagram`
shows it per confidence bin: each bar is the accuracy of the images in the bin and each
marker their mean confidence. A bar below its marker means over-confidence.

:func:`digitrec.calibrate` fits a softmax temperature on held-out data (temperature
scaling); predicted labels stay the same, the probabilities change.
"""

# %%
# Train on 55,000 training images, keeping 5,000 aside for calibration. A network
# trained to a near-zero loss is usually over-confident on new images.
import digitrec
from digitrec.plotting import plot_reliability_diagram

train, val = digitrec.load_mnist("train").split(5_000, seed=0)
test = digitrec.load_mnist("test")
model = digitrec.DigitClassifier("mlp", seed=0)
digitrec.Trainer(model, recipe="mlp-fast", progress=False).fit(train)
before = digitrec.evaluate(model, test)
plot_reliability_diagram(before)

# %%
# Fit the temperature on the validation images (never on the test images) and look
# again at the same test images.
temperature = digitrec.calibrate(model, val)
after = digitrec.evaluate(model, test)
print(
    f"temperature {temperature:.3f}: ECE {before.ece:.4f} -> {after.ece:.4f}, "
    f"NLL {before.nll:.4f} -> {after.nll:.4f}"
)
plot_reliability_diagram(after)
