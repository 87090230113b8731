"""Train with torch.distributed: the same Trainer on several processes, launched by torchrun.

Nothing in the training code changes: under torchrun, Trainer.fit joins the process
group (gloo on the CPU, nccl on CUDA), wraps the model in DistributedDataParallel,
gives each process its share of every shuffled epoch, averages the loss across
processes, and lets only rank 0 report and write checkpoints. batch_size is per
process, so the effective batch is batch_size x processes.

Examples:
    torchrun --standalone --nproc_per_node=2 examples/train_distributed.py --epochs 2
    python examples/train_distributed.py --epochs 2        # one process, same script
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

import digitrec


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of this example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--arch", choices=["mlp", "cnn"], default="mlp", help="(default: mlp)")
    parser.add_argument("--epochs", type=int, help="passes over the data (default: recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (each rank its own GPU)")
    parser.add_argument(
        "--out", type=Path, help="folder where each rank writes rank<N>.json (weights sha256)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate, and report from rank 0; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        train, test = digitrec.load_mnist("train"), digitrec.load_mnist("test")
        model = digitrec.DigitClassifier(args.arch, seed=args.seed)
        trainer = digitrec.Trainer(
            model, device=args.device, epochs=args.epochs, seed=args.seed, progress=True
        )
        history = trainer.fit(train)
        result = digitrec.evaluate_accuracy(model, test, device=trainer.device)
    except digitrec.DigitrecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.rank,
            "weights_sha256": digest.hexdigest(),
            "accuracy": result.accuracy,
        }
        (args.out / f"rank{trainer.rank}.json").write_text(json.dumps(record))
    if trainer.is_main_process:
        print(f"processes: {trainer.world_size}, batch {trainer.config.batch_size} per process")
        print(history)
        print(result)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
