"""Screen PneumoniaMNIST recipes on the validation split only (the test split is never read).

Trains one candidate for one seed and prints, for its last weights and for each
weight average asked for, val accuracy, ROC AUC, NLL before and after
temperature scaling (fitted on val), the temperature and the calibrated ECE; the
line is also appended to ``--log`` (JSON lines). Several exponential moving
averages (``--ema``) and means of the last epochs' weights (``--swa-last``) come
from one run: each is updated after every optimizer step (or epoch) as
``TrainConfig(ema_decay=...)`` does, the averages of one decay being identical.
``--bn`` adds each average with its batch-normalization statistics recomputed on
the training images. ``benchmarks/results/medical_screen.jsonl`` holds the runs
behind ``bench_medical.py``'s recipe.

Example::

    python benchmarks/screen_medical.py --name no-augment --set augment=False --seed 0
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

import digitrec
from digitrec.training._engine import Step
from digitrec.training.callbacks import TrainerLike

NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
NAMES = ("normal", "pneumonia")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", required=True, help="the candidate's name in the log")
    parser.add_argument("--npz", type=Path, default=NPZ)
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--base", default="cnn", help="the RECIPES entry to start from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="TrainConfig field=python literal")
    parser.add_argument("--ema", nargs="*", type=float, default=[], help="EMA decays")
    parser.add_argument("--swa-last", nargs="*", type=int, default=[], help="epochs averaged")
    parser.add_argument("--bn", action="store_true", help="also recompute BN statistics")
    parser.add_argument("--log", type=Path, default=Path("medical_screen.jsonl"))
    return parser.parse_args()


def measure(model: digitrec.DigitClassifier, val: digitrec.ImageDataset) -> dict[str, float]:
    model = copy.deepcopy(model)
    model.temperature.fill_(1.0)
    labels = val.labels
    probs = digitrec.predict_proba(model, val).double()
    nll = float(torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels))
    temperature = digitrec.calibrate(model, val)
    report = digitrec.evaluate(model, val)
    calibrated = digitrec.predict_proba(model, val).double()
    nll_cal = float(torch.nn.functional.nll_loss(calibrated.clamp_min(1e-12).log(), labels))
    auroc = roc_auc_score(labels.numpy(), probs[:, 1].numpy())
    return {
        "acc": round(report.accuracy, 4),
        "auroc": round(float(auroc), 5),
        "nll_T1": round(nll, 4),
        "nll_cal": round(nll_cal, 4),
        "T": round(temperature, 3),
        "ece_cal": round(report.ece, 4),
    }


class _Averaging:
    """The trainer's step, then an update of every average (a ``Step`` as the trainer needs)."""

    def __init__(self, step: Step, model: torch.nn.Module, averages: list[AveragedModel]) -> None:
        self.step, self.model, self.averages = step, model, averages

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> torch.Tensor:
        loss = self.step(images, labels, lr)
        for average in self.averages:
            average.update_parameters(self.model)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.step.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step.load_state_dict(state)


class Averages(digitrec.Callback):
    """Per-step EMAs (wrapping the trainer's step) and per-epoch means of the last epochs."""

    def __init__(self, decays: list[float], last: list[int], epochs: int, val: Any) -> None:
        self.decays, self.last, self.epochs, self.val = decays, last, epochs, val
        self.emas: dict[float, AveragedModel] = {}
        self.swa: dict[int, AveragedModel] = {}
        self.results: dict[str, dict[str, float]] = {}

    def on_fit_start(self, trainer: TrainerLike, history: digitrec.History) -> None:
        assert isinstance(trainer, digitrec.Trainer)
        run = trainer._run
        assert run is not None
        self.emas = {
            decay: AveragedModel(
                trainer.model,
                multi_avg_fn=get_ema_multi_avg_fn(decay),  # type: ignore[no-untyped-call]
                use_buffers=True,
            )
            for decay in self.decays
        }
        run.update = _Averaging(run.update, trainer.model, list(self.emas.values()))

    def on_epoch_end(self, trainer: TrainerLike, history: digitrec.History) -> None:
        for count in self.last:
            if history.epochs > self.epochs - count:
                if count not in self.swa:
                    self.swa[count] = AveragedModel(trainer.model, use_buffers=True)
                else:
                    self.swa[count].update_parameters(trainer.model)
        if history.epochs == self.epochs:
            self.results["last"] = measure(cast(digitrec.DigitClassifier, trainer.model), self.val)


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    train = digitrec.ImageDataset.from_npz(args.npz, "train", class_names=NAMES)
    val = digitrec.ImageDataset.from_npz(args.npz, "val", class_names=NAMES)
    settings = {key: ast.literal_eval(value) for key, value in (s.split("=", 1) for s in args.set)}
    settings.setdefault("epochs", 40)
    settings.setdefault("label_smoothing", 0.1)
    recipe = replace(digitrec.RECIPES[args.base], num_threads=1, seed=args.seed, **settings)
    model = digitrec.DigitClassifier(
        args.arch, input_shape=train.image_shape, num_classes=2, class_names=NAMES, seed=args.seed
    )
    hook = Averages(args.ema, args.swa_last, recipe.epochs, val)
    started = time.time()
    digitrec.Trainer(model, recipe=recipe, progress=False, callbacks=[hook]).fit(train)
    seconds = time.time() - started
    results = hook.results
    for decay, average in hook.emas.items():
        results[f"ema{decay}"] = measure(cast(digitrec.DigitClassifier, average.module), val)
        if args.bn:
            rebuilt = copy.deepcopy(average.module)
            update_bn([train.images[i : i + 128] for i in range(0, len(train), 128)], rebuilt)
            results[f"ema{decay}_bn"] = measure(cast(digitrec.DigitClassifier, rebuilt), val)
    for count, average in hook.swa.items():
        results[f"swa_last{count}"] = measure(cast(digitrec.DigitClassifier, average.module), val)
    line = json.dumps(
        {
            "name": args.name,
            "arch": args.arch,
            "seed": args.seed,
            "recipe": settings,
            "seconds": round(seconds),
            "results": results,
        }
    )
    print(line)
    with args.log.open("a", encoding="utf-8") as log:
        log.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
