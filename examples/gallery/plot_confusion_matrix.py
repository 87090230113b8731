"""
Confusion matrix
================

:func:`~digitrec.plotting.plot_confusion_matrix` shows which classes the model
confuses, from the :class:`~digitrec.ClassificationReport` that
:func:`digitrec.evaluate` returns: rows are the actual digits, columns the predicted
ones.
"""

# %%
# Train the notebook's network briefly and evaluate it on the 10,000 test images.
import digitrec
from digitrec.plotting import plot_confusion_matrix

train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
model = digitrec.DigitClassifier("mlp", seed=0)
digitrec.Trainer(model, recipe="mlp-fast", progress=False).fit(train)
report = digitrec.evaluate(model, test)
print(
    f"accuracy {100 * report.accuracy:.2f}%, balanced accuracy "
    f"{100 * report.balanced_accuracy:.2f}%"
)

# %%
# Counts in each cell.
plot_confusion_matrix(report)

# %%
# With ``normalize=True`` each row holds fractions of the actual class, so the diagonal
# is the per-class sensitivity and the rest shows where each digit goes astray.
plot_confusion_matrix(report, normalize=True)
