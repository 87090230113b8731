"""
Loss curve with validation accuracy
===================================

:func:`~digitrec.plotting.plot_loss_curve` plots the training loss of each epoch from
the :class:`~digitrec.History` that :meth:`Trainer.fit <digitrec.Trainer.fit>`
returns. When ``fit`` was given a validation set, the validation accuracy of each
epoch is drawn on a second axis.
"""

# %%
# Hold out 5,000 training images for validation (the same ones for the same seed)
# and train the notebook's network with the ``"mlp-fast"`` recipe.
import digitrec
from digitrec.plotting import plot_loss_curve

train, val = digitrec.load_mnist("train").split(5_000, seed=0)
model = digitrec.DigitClassifier("mlp", seed=0)
history = digitrec.Trainer(model, recipe="mlp-fast", progress=False).fit(train, val)
print(history)

# %%
# The figure.
plot_loss_curve(history)
