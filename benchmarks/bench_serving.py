"""Serving load: throughput and latency of ``digitrec serve`` under 1, 8 and 32 clients.

The server is the command users run, ``digitrec serve MODEL --port P``, in its own
process(es) on 127.0.0.1. A bounded asyncio client (aiohttp, about a third of the
CPU per request of an httpx client, so more of the two cores are left to the
server) posts single MNIST test digits as PNG files in the multipart field
``file`` of ``/v1/predict``, each client one request at a time; each file's
multipart body is encoded once, before the clock starts (a third less client CPU
per request than a new ``FormData`` each time, measured side by side). Every level
runs a fixed number of requests (and stops early at a time limit), after a warm-up.
Four settings: ``digitrec serve`` as it is (the micro-batcher, and the model in a
child process: HTTP and the model on two cores), one process with the model on a
thread of its own (``--no-model-process``), two worker processes (``--workers 2``,
one per core, each with the batcher and no model process), and one process without
batching or model process. The CPU seconds the server's processes (all of them:
workers and model processes) and the client spent per request are recorded next
to the figures. The model is the bundled ``mnist-cnn`` when its weights are built,
else a ``"cnn"`` trained for one epoch on 10,000 images here (the speed does not
depend on the weights). Client and server share the machine's cores.

The machine's speed drifts from minute to minute on a shared host (whole runs of
this benchmark differed by a third, every setting alike), so before each
setting's runs a reference is timed in this process, with no load: one thread's
milliseconds to decode and classify four of the PNGs in one call (the model
thread's work for one batch). Compare runs through it, not by their date.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

import aiohttp
import httpx
from _common import RESULTS_DIR, machine, machine_line, markdown_table, threads, write_json
from PIL import Image

import digitrec

CONCURRENCY = (1, 8, 32)
#: Setting name: extra ``digitrec serve`` options.
SETTINGS: dict[str, list[str]] = {
    "model process (the default)": [],
    "1 process, no model process": ["--no-model-process"],
    "2 processes": ["--workers", "2"],
    "1 process, batching off": ["--no-model-process", "--max-batch-images", "1"],
}
WARMUP = 30
REFERENCE_CALLS = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per level")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per level")
    parser.add_argument(
        "--repeats", type=int, default=5, help="runs per level; the median one is reported"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 100 requests, 10 s")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for serving.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds, args.repeats = 100, 10.0, 1
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


def reference_ms(model: Path, files: list[bytes]) -> float:
    """Median ms of one ``classify`` of 4 PNGs on one thread: how fast the machine is now."""
    loaded = digitrec.load(model)
    batch = files[:4]
    with threads(1):
        digitrec.classify(loaded, batch)
        times = []
        for _ in range(REFERENCE_CALLS):
            started = time.perf_counter()
            digitrec.classify(loaded, batch)
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def start_server(model: Path, options: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "digitrec", "serve", str(model), "--port", str(port)]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if healthy(url):
            time.sleep(2)  # let every worker finish starting
            return process, url
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children that were waited for, from /proc."""
    clock = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / clock


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            found += [int(child) for child in tasks.read_text().split()]
    return found


def server_cpu(process: subprocess.Popen[bytes]) -> float:
    """CPU seconds of the server: its process and all its live descendants (workers, models)."""
    pids, queue = [], [process.pid]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += _children(pid)
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # it ended meanwhile
            total += cpu_seconds(pid)
    return total


async def multipart_body(blob: bytes) -> tuple[bytes, dict[str, str]]:
    """``blob`` as the field ``file`` of a multipart form: the body and its content type."""
    form = aiohttp.FormData()
    form.add_field("file", blob, filename="d.png", content_type="image/png")
    writer = form()
    chunks: list[bytes] = []

    class _Sink:
        async def write(self, chunk: bytes) -> None:
            chunks.append(bytes(chunk))

    await writer.write(_Sink())  # type: ignore[arg-type]
    return b"".join(chunks), {"Content-Type": writer.content_type}


async def load(
    url: str, files: list[bytes], clients: int, requests: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    # Each file's multipart body is encoded once, by aiohttp, before the clock starts: the
    # client's CPU on the shared cores then goes to sending and reading, not re-encoding.
    bodies = [await multipart_body(blob) for blob in files]
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def post(index: int) -> None:
            nonlocal errors
            body, headers = bodies[index % len(bodies)]
            started = time.perf_counter()
            try:
                async with session.post("/v1/predict", data=body, headers=headers) as answer:
                    body = await answer.json()
                    ok = answer.status == 200 and len(body["predictions"]) == 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

        async def one_client(total: int, deadline: float) -> None:
            nonlocal issued
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                await post(issued)

        await asyncio.gather(*(one_client(WARMUP * clients, float("inf")) for _ in range(clients)))
        latencies.clear()
        errors, issued = 0, 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(one_client(requests, deadline) for _ in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(ordered),
        "errors": errors,
        "predictions_per_second": len(ordered) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def measure(
    process: subprocess.Popen[bytes], url: str, files: list[bytes], clients: int, args: Any
) -> dict[str, Any]:
    """One level: the load's figures, plus CPU ms per request of server and client."""
    server_before, client_before = server_cpu(process), time.process_time()
    run = asyncio.run(load(url, files, clients, args.requests, args.seconds))
    done = run["requests"] + WARMUP * clients
    run["server_cpu_ms_per_request"] = 1000 * (server_cpu(process) - server_before) / done
    run["client_cpu_ms_per_request"] = 1000 * (time.process_time() - client_before) / done
    return run


def median_run(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput, with every run's throughput beside it.

    A shared two-core machine varies from minute to minute: the spread is recorded,
    not hidden.
    """
    ordered = sorted(repeats, key=lambda run: float(run["predictions_per_second"]))
    median = dict(ordered[len(ordered) // 2])
    median["all_predictions_per_second"] = [run["predictions_per_second"] for run in repeats]
    median["errors"] = sum(int(run["errors"]) for run in repeats)
    return median


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    load_before = os.getloadavg()
    files = mnist_pngs(100)
    runs: dict[str, list[dict[str, Any]]] = {}
    references: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        model, which = model_file(Path(folder), args.quick)
        for setting, options in SETTINGS.items():
            references[setting] = round(reference_ms(model, files), 3)
            process, url = start_server(model, options)
            try:
                runs[setting] = [
                    median_run([measure(process, url, files, c, args) for _ in range(args.repeats)])
                    for c in CONCURRENCY
                ]
            finally:
                process.terminate()
                process.wait(30)
    results = {
        "machine": machine(),
        "model": which,
        "load_average_before": [round(value, 2) for value in load_before],
        "requests_per_level": args.requests,
        "repeats": args.repeats,
        "seconds_per_level": args.seconds,
        "reference_ms": references,
        "runs": runs,
    }
    text = report(results)
    print(text)
    path = write_json(args.out, "serving", results)
    (args.out / "serving.txt").write_text(text + "\n", encoding="utf-8")
    print(f"\nwrote {path} and serving.txt")
    return results


def report(results: dict[str, Any]) -> str:
    """The results as ``serving.txt`` holds them."""
    lines: list[str] = []
    runs: dict[str, list[dict[str, Any]]] = results["runs"]
    lines.append(machine_line())
    lines.append(
        f"Model: {results['model']}. Load average before (1, 5, 15 min): "
        f"{results['load_average_before']}"
    )
    lines.append(
        f"POST /v1/predict with one 28x28 PNG; {results['requests_per_level']} requests or "
        f"{results['seconds_per_level']:g} s per run, {results['repeats']} runs per level (the "
        "median run shown, every run's throughput in brackets; errors summed over all runs),"
        " after"
    )
    lines.append(
        f"{WARMUP} per client to warm up; `digitrec serve` defaults (one torch thread per "
        "process, batching window 2 ms, up to 64 images); aiohttp client, each multipart "
        "body encoded once."
    )
    references = results.get("reference_ms", {})
    if references:
        lines.append(
            "Machine speed before each setting (one thread, ms to decode and classify 4 PNGs "
            "in one call, median of "
            f"{REFERENCE_CALLS}): "
            + ", ".join(f"{setting} {value:.2f}" for setting, value in references.items())
        )
    rows = [
        [
            setting,
            run["clients"],
            run["requests"],
            f"{run['predictions_per_second']:,.0f} "
            f"({min(run['all_predictions_per_second']):,.0f}-"
            f"{max(run['all_predictions_per_second']):,.0f})",
            f"{run['p50_ms']:.1f}",
            f"{run['p99_ms']:.1f}",
            run["errors"],
            f"{run['server_cpu_ms_per_request']:.2f}",
            f"{run['client_cpu_ms_per_request']:.2f}",
        ]
        for setting, levels in runs.items()
        for run in levels
    ]
    lines.append(
        markdown_table(
            [
                "setting",
                "clients",
                "requests",
                "predictions/s (range)",
                "p50 (ms)",
                "p99 (ms)",
                "errors",
                "server CPU ms/request",
                "client CPU ms/request",
            ],
            rows,
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
