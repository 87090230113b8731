"""Serving load: throughput and latency of ``digitrec serve`` under 1, 8 and 32 clients.

The server (``digitrec.serving.create_app`` under uvicorn) runs in its own process
on 127.0.0.1; a bounded asyncio + httpx client in this process posts single MNIST
test digits as PNG files to ``/v1/predict``, each client one request at a time.
Every level runs a fixed number of requests (and stops early at a time limit),
after a warm-up. It is measured twice: with the micro-batcher (concurrent requests
within 2 ms classified in one call, up to 64 images) and without it (each request
classified alone on a worker thread). The model is the bundled ``mnist-cnn`` when
its weights are built, else a ``"cnn"`` trained for one epoch on 10,000 images here (the speed does
not depend on the weights). Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from _common import RESULTS_DIR, machine, machine_line, markdown_table, threads, write_json
from PIL import Image

import digitrec

CONCURRENCY = (1, 8, 32)
SETTINGS = {"batching on": 64, "batching off": 1}
WARMUP = 30
SERVER = (
    "import sys, torch, uvicorn; from digitrec.serving import create_app; "
    "torch.set_num_threads(1); "
    "uvicorn.run(create_app(sys.argv[1], max_batch_images=int(sys.argv[2])), "
    "host='127.0.0.1', port=int(sys.argv[3]), log_level='warning')"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per level")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per level")
    parser.add_argument("--quick", action="store_true", help="smoke test: 100 requests, 10 s")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for serving.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds = 100, 10.0
    return args


def model_file(folder: Path, quick: bool) -> tuple[Path, str]:
    bundled = resources.files("digitrec") / "_weights" / "mnist-cnn.safetensors"
    if bundled.is_file():
        try:
            digitrec.pretrained("mnist-cnn")
            return Path(str(bundled)), "bundled mnist-cnn"
        except digitrec.DigitrecError:
            pass
    model = digitrec.DigitClassifier("cnn", seed=0)
    train = digitrec.load_mnist("train")
    count = 2000 if quick else 10_000
    with threads(1):
        digitrec.Trainer(model, epochs=1, progress=False).fit(train[:count])
    path = digitrec.save(model, folder / "cnn.safetensors")
    return path, f"'cnn' trained 1 epoch on {count} MNIST images here"


def mnist_pngs(count: int) -> list[bytes]:
    images = digitrec.load_mnist("test").images[:count, 0].numpy()
    files = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        files.append(buffer.getvalue())
    return files


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def start_server(model: Path, max_batch: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), str(max_batch), str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if healthy(url):
            return process, url
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


async def load(
    url: str, files: list[bytes], clients: int, requests: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    kinds: dict[str, int] = {}
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def post(index: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                answer = await client.post(
                    "/v1/predict", files={"file": ("d.png", files[index % len(files)])}
                )
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

        async def one_client(total: int, deadline: float) -> None:
            nonlocal issued
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                await post(issued)

        await asyncio.gather(*(one_client(WARMUP, float("inf")) for _ in range(clients)))
        latencies.clear()
        errors, issued = 0, 0
        kinds.clear()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(one_client(requests, deadline) for _ in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(ordered),
        "errors": errors,
        "error_kinds": kinds,
        "predictions_per_second": len(ordered) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    load_before = os.getloadavg()
    files = mnist_pngs(100)
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        model, which = model_file(Path(folder), args.quick)
        for setting, max_batch in SETTINGS.items():
            process, url = start_server(model, max_batch)
            try:
                runs[setting] = [
                    asyncio.run(load(url, files, clients, args.requests, args.seconds))
                    for clients in CONCURRENCY
                ]
            finally:
                process.terminate()
                process.wait(10)
    results = {
        "machine": machine(),
        "model": which,
        "load_average_before": [round(value, 2) for value in load_before],
        "requests_per_level": args.requests,
        "seconds_per_level": args.seconds,
        "runs": runs,
    }
    print(machine_line())
    print(f"Model: {which}. Load average before (1, 5, 15 min): {results['load_average_before']}")
    print(
        f"POST /v1/predict with one 28x28 PNG; {args.requests} requests or {args.seconds:g} s "
        "per level, after"
    )
    print(f"{WARMUP} per client to warm up; the server uses one torch thread per call.")
    rows = [
        [
            setting,
            run["clients"],
            run["requests"],
            f"{run['predictions_per_second']:,.0f}",
            f"{run['p50_ms']:.1f}",
            f"{run['p99_ms']:.1f}",
            run["errors"],
        ]
        for setting, levels in runs.items()
        for run in levels
    ]
    print(
        markdown_table(
            ["setting", "clients", "requests", "predictions/s", "p50 (ms)", "p99 (ms)", "errors"],
            rows,
        )
    )
    path = write_json(args.out, "serving", results)
    print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
