from __future__ import annotations

import dataclasses

import pytest
import torch

import digitrec


@pytest.fixture(scope="module")
def small_train(mnist_train: digitrec.ImageDataset) -> digitrec.ImageDataset:
    return mnist_train[:3000]


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_none_takes_the_architectures_recipe() -> None:
    trainer = digitrec.Trainer(digitrec.DigitClassifier("mlp"), seed=5)
    assert trainer.config == dataclasses.replace(digitrec.RECIPES["mlp"], seed=5)
    assert (trainer.config.optimizer, trainer.config.batch_size) == ("sgd", 64)
    cnn = digitrec.Trainer(digitrec.DigitClassifier("cnn"), epochs=7, lr=0.01)
    assert cnn.config.epochs == 7
    assert cnn.config.lr == 0.01
    assert cnn.config.batch_size == digitrec.RECIPES["cnn"].batch_size


def test_recipes_by_name() -> None:
    trainer = digitrec.Trainer(digitrec.DigitClassifier("mlp"), recipe="mlp-fast", epochs=2)
    assert trainer.config == dataclasses.replace(digitrec.RECIPES["mlp-fast"], epochs=2)
    custom = dataclasses.replace(digitrec.RECIPES["cnn"], epochs=1, label_smoothing=0.1)
    trainer = digitrec.Trainer(digitrec.DigitClassifier("mlp"), recipe=custom, seed=3)
    assert trainer.config == dataclasses.replace(custom, seed=3)
    with pytest.raises(digitrec.InvalidInputError, match="nesterov=True needs optimizer='sgd'"):
        dataclasses.replace(digitrec.RECIPES["cnn"], optimizer="adam")
    with pytest.raises(digitrec.InvalidInputError, match="label_smoothing"):
        dataclasses.replace(digitrec.RECIPES["mlp"], label_smoothing=1.0)


def test_config_is_frozen() -> None:
    config = digitrec.Trainer(digitrec.DigitClassifier()).config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 1.5}, "epochs must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"lr": -0.1}, "lr must be a finite number > 0"),
        ({"lr": float("inf")}, "lr must be a finite number"),
        ({"momentum": 1.0}, r"momentum must be a finite number in \[0, 1\)"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"num_threads": 0}, "num_threads"),
        ({"augment": "yes"}, "augment must be True or False"),
        (
            {"recipe": "vgg"},
            r"recipe must be a TrainConfig or one of \['cnn', 'mlp', 'mlp-fast', 'resnet'\]",
        ),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(digitrec.InvalidInputError, match=message):
        digitrec.Trainer(digitrec.DigitClassifier(), **kwargs)  # type: ignore[arg-type]


def test_devices() -> None:
    model = digitrec.DigitClassifier()
    # "auto" picks CUDA, then MPS, then the CPU.
    if torch.cuda.is_available():
        best = "cuda"
    elif torch.backends.mps.is_available():
        best = "mps"
    else:
        best = "cpu"
    assert digitrec.Trainer(model, device="auto").device.type == best
    assert digitrec.Trainer(model, device=torch.device("cpu")).device == torch.device("cpu")
    with pytest.raises(digitrec.InvalidInputError, match="'tpu'"):
        digitrec.Trainer(model, device="tpu")
    with pytest.raises(digitrec.InvalidTypeError, match="int"):
        digitrec.Trainer(model, device=0)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(digitrec.DeviceUnavailableError, match="cuda"):
            digitrec.Trainer(model, device="cuda")


def test_fit_learns_and_records_history(
    small_train: digitrec.ImageDataset, mnist_test: digitrec.ImageDataset
) -> None:
    model = digitrec.DigitClassifier(seed=0)
    before = digitrec.evaluate_accuracy(model, mnist_test).accuracy
    history = digitrec.Trainer(model, epochs=3, progress=False).fit(
        small_train, val=mnist_test[:1000]
    )
    assert history.epochs == 3
    assert len(history.train_loss) == len(history.val_accuracy) == 3
    assert len(history.epoch_seconds) == 3
    assert all(s > 0 for s in history.epoch_seconds)
    assert history.train_loss[-1] < history.train_loss[0]
    after = digitrec.evaluate_accuracy(model, mnist_test).accuracy
    assert before < 0.3 < 0.85 < after
    # The last validation accuracy is the trained model's, measured on the val set.
    val_after = digitrec.evaluate_accuracy(model, mnist_test[:1000]).accuracy
    assert history.val_accuracy[-1] == pytest.approx(val_after)
    assert (
        0.3
        < history.val_accuracy[0]
        <= max(history.val_accuracy)
        == pytest.approx(max(history.val_accuracy[1:]))
    )
    with torch.no_grad():
        logits = model.eval()(mnist_test.images[:1000])
    val_loss = float(torch.nn.functional.cross_entropy(logits, mnist_test.labels[:1000]))
    assert history.val_loss[-1] == pytest.approx(val_loss, rel=1e-4)
    last_row = str(history).splitlines()[-1].split()
    assert last_row[:4] == [
        "3",
        f"{history.train_loss[-1]:.4f}",
        f"{val_loss:.4f}",
        f"{100 * val_after:.2f}%",
    ]


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_other_optimizers_train(
    small_train: digitrec.ImageDataset, optimizer: digitrec.OptimizerName
) -> None:
    model = digitrec.DigitClassifier(seed=0)
    trainer = digitrec.Trainer(model, epochs=2, optimizer=optimizer, lr=1e-3, progress=False)
    assert trainer.config.optimizer == optimizer
    history = trainer.fit(small_train)
    # SGD at this learning rate barely moves (loss about 2.2 after 2 epochs); Adam does.
    assert history.train_loss[1] < history.train_loss[0] < 2.0
    assert history.train_loss[1] < 1.0
    assert digitrec.evaluate_accuracy(model, small_train[:1000]).accuracy > 0.7


def test_adamw_decouples_weight_decay(small_train: digitrec.ImageDataset) -> None:
    # Without weight decay Adam and AdamW take the same steps; with it they differ.
    losses = {}
    for optimizer in ("adam", "adamw"):
        losses[optimizer] = (
            digitrec.Trainer(
                digitrec.DigitClassifier(seed=0),
                epochs=1,
                optimizer=optimizer,
                lr=1e-3,
                weight_decay=0.1,
                progress=False,
            )
            .fit(small_train[:1000])
            .train_loss
        )
    assert losses["adam"] != losses["adamw"]


def test_same_seed_gives_bit_identical_runs(small_train: digitrec.ImageDataset) -> None:
    runs = []
    for _ in range(2):
        model = digitrec.DigitClassifier("mlp", seed=1)
        history = digitrec.Trainer(model, epochs=2, seed=7, progress=False).fit(small_train)
        runs.append((history.train_loss, _weights(model)))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    model = digitrec.DigitClassifier("mlp", seed=1)
    other = digitrec.Trainer(model, epochs=2, seed=8, progress=False).fit(small_train)
    assert other.train_loss != runs[0][0]


def test_cnn_trains_on_other_shapes() -> None:
    # A learnable synthetic task: the class is which quadrant of a 3x16x16 image is bright.
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (512,), generator=generator)
    images = torch.randint(0, 60, (512, 3, 16, 16), generator=generator, dtype=torch.uint8)
    for index, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[index, :, row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] += 180
    data = digitrec.ImageDataset(images, labels, class_names=["tl", "tr", "bl", "br"])
    model = digitrec.DigitClassifier("cnn", input_shape=(3, 16, 16), num_classes=4, seed=0)
    digitrec.Trainer(model, epochs=3, batch_size=32, progress=False).fit(data)
    assert digitrec.evaluate_accuracy(model, data).accuracy > 0.95


def test_fit_restores_threads_mode_and_global_rng(small_train: digitrec.ImageDataset) -> None:
    model = digitrec.DigitClassifier(seed=0).eval()
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    digitrec.Trainer(model, epochs=1, progress=False).fit(small_train[:500])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    assert torch.is_grad_enabled()


def test_progress_lines_only_when_asked(
    small_train: digitrec.ImageDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=False).fit(
        small_train[:500]
    )
    assert capsys.readouterr() == ("", "")
    digitrec.Trainer(digitrec.DigitClassifier(seed=0), epochs=2, progress=True).fit(
        small_train[:500]
    )
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("train_loss" in line for line in lines)


def test_fit_rejects_data_that_does_not_fit() -> None:
    model = digitrec.DigitClassifier()
    trainer = digitrec.Trainer(model, progress=False)
    rgb = digitrec.ImageDataset(
        torch.zeros(2, 3, 28, 28, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64)
    )
    with pytest.raises(digitrec.InvalidInputError, match=r"\(3, 28, 28\).*\(1, 28, 28\)"):
        trainer.fit(rgb)
    many = digitrec.ImageDataset(
        torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 12])
    )
    with pytest.raises(digitrec.InvalidInputError, match=r"label 12.*10 classes"):
        trainer.fit(many)
    with pytest.raises(digitrec.InvalidInputError, match="no images"):
        trainer.fit(many[:0])
    with pytest.raises(digitrec.InvalidTypeError, match="ImageDataset"):
        trainer.fit((torch.zeros(2, 1, 28, 28), torch.zeros(2)))  # type: ignore[arg-type]
    with pytest.raises(digitrec.InvalidInputError, match="val images"):
        trainer.fit(many[:1], val=rgb)
    with pytest.raises(digitrec.InvalidTypeError, match="DigitClassifier"):
        digitrec.Trainer(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_history_table() -> None:
    history = digitrec.History(
        train_loss=[0.5, 0.25], val_accuracy=[0.9, 0.95], epoch_seconds=[1.0, 2.0]
    )
    assert str(history).splitlines()[2].split() == ["2", "0.2500", "95.00%", "2.00"]
    assert history.to_dict()["val_accuracy"] == [0.9, 0.95]
    assert str(digitrec.History(train_loss=[0.5, 0.3])).splitlines() == [
        "epoch  train_loss",
        "    1      0.5000",
        "    2      0.3000",
    ]
