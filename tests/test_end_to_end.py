"""The notebook's promise, on all of MNIST: the default MLP recipe reaches 97%."""

from __future__ import annotations

import digitrec


def test_seed_recipe_reaches_97_percent(
    mnist_train: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier("mlp", seed=0)
    trainer = digitrec.Trainer(model, progress=False)
    assert trainer.config == digitrec.RECIPES["mlp"]
    history = trainer.fit(mnist_train)
    result = digitrec.evaluate_accuracy(model, mnist_test)
    print(f"\n{result}\ntraining seconds: {sum(history.epoch_seconds):.1f}")
    assert result.total == 10_000
    assert result.accuracy >= 0.970
    assert history.train_loss[-1] < history.train_loss[0] / 5
