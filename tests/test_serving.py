"""The HTTP service: every endpoint, every refusal, the API key, limits, real HTTP, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import digitrec

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from digitrec.inference import Prediction  # noqa: E402
from digitrec.serving import create_app  # noqa: E402
from digitrec.serving._batcher import MicroBatcher  # noqa: E402
from digitrec.serving._extra import require  # noqa: E402

KEY = "s3cret-key"
HAS_PRETRAINED = (resources.files("digitrec") / "_weights" / "mnist-cnn.safetensors").is_file()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model() -> digitrec.DigitClassifier:
    trained = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(trained, epochs=1, progress=False).fit(digitrec.load_mnist("train")[:5000])
    return trained


@pytest.fixture(scope="module")
def model_file(model: digitrec.DigitClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serving") / "mlp.safetensors"
    return digitrec.save(model, path, metadata={"note": "test fixture"})


@pytest.fixture(scope="module")
def digits() -> list[tuple[np.ndarray, int]]:
    test = digitrec.load_mnist("test")[:8]
    return [(test.images[i, 0].numpy(), int(test.labels[i])) for i in range(8)]


@pytest.fixture(scope="module")
def client(model_file: Path) -> Iterator[TestClient]:
    with TestClient(create_app(model_file, max_upload_bytes=1_000_000, max_pixels=250_000)) as c:
        yield c


def test_health(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_model_info_of_a_file_has_its_header(client: TestClient, model_file: Path) -> None:
    info = client.get("/v1/model").json()
    assert info["source"] == "mlp.safetensors"
    assert info["arch"] == "mlp"
    assert info["input_shape"] == [1, 28, 28]
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["prepare"] == "digits"
    assert info["header"] == digitrec.read_metadata(model_file)
    assert info["header"]["metadata"] == {"note": "test fixture"}
    assert set(info["versions"]) >= {"digitrec", "torch", "python"}


def test_model_info_of_an_in_memory_model(model: digitrec.DigitClassifier) -> None:
    info = TestClient(create_app(model)).get("/v1/model").json()
    assert info["source"] == "in-memory model"
    assert info["header"] is None
    assert info["config"] == model.config.to_dict()


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "PredictResponse" in schema["components"]["schemas"]


def test_predict_files_takes_the_library_road(
    client: TestClient, model: digitrec.DigitClassifier, digits: list[tuple[np.ndarray, int]]
) -> None:
    files = [png_bytes(pixels) for pixels, _ in digits]
    answer = client.post(
        "/v1/predict", files=[("file", (f"{i}.png", f)) for i, f in enumerate(files)]
    )
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    expected = digitrec.classify(model, files)
    assert [p["class_index"] for p in predictions] == [e.class_index for e in expected]
    for got, want in zip(predictions, expected, strict=True):
        assert got["label"] == want.label
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-6)
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-6)
        assert got["out_of_distribution"] is None
    assert (
        sum(p["class_index"] == label for p, (_, label) in zip(predictions, digits, strict=True))
        >= 6
    )


def test_predict_json_pixels(
    client: TestClient, model: digitrec.DigitClassifier, digits: list[tuple[np.ndarray, int]]
) -> None:
    pixels = digits[0][0]
    one = client.post("/v1/predict", json={"pixels": pixels.tolist()}).json()["predictions"]
    [expected] = digitrec.classify(model, [torch.from_numpy(pixels).unsqueeze(0)])
    assert one[0]["class_index"] == expected.class_index
    assert one[0]["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
    scaled = client.post(
        "/v1/predict", json={"pixels": (pixels / 255).tolist(), "max_value": 1}
    ).json()["predictions"]
    assert scaled[0]["probabilities"] == pytest.approx(one[0]["probabilities"], abs=1e-5)
    many = client.post(
        "/v1/predict", json={"pixels": [p.tolist() for p, _ in digits[:3]] + [[[0, 255], [9, 9]]]}
    )
    assert many.status_code == 200
    assert len(many.json()["predictions"]) == 4


BAD_REQUESTS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "non-image bytes": (400, "DataFileError", {"files": {"file": ("x.png", b"not an image")}}),
    "empty file": (400, "DataFileError", {"files": {"file": ("x.png", b"")}}),
    "wrong field": (400, "InvalidInputError", {"files": {"image": ("x.png", b"\x89PNG")}}),
    "text in the file field": (
        400,
        "InvalidInputError",
        {"files": {"other": ("x.png", b"x")}, "data": {"file": "text"}},
    ),
    "too large to read": (
        400,
        "DataFileError",
        {"files": {"file": ("big.png", png_bytes(np.zeros((600, 600), np.uint8)))}},
    ),
    "NaN pixel": (400, "InvalidInputError", {"content": b'{"pixels": [[1, NaN]]}'}),
    "infinite pixel": (400, "InvalidInputError", {"content": b'{"pixels": [[1e400]]}'}),
    "pixel over 255": (400, "InvalidInputError", {"json": {"pixels": [[0, 256]]}}),
    "negative pixel": (400, "InvalidInputError", {"json": {"pixels": [[-1, 0]]}}),
    "pixel over 1": (400, "InvalidInputError", {"json": {"pixels": [[2]], "max_value": 1}}),
    "ragged rows": (400, "InvalidInputError", {"json": {"pixels": [[1, 2], [3]]}}),
    "no image": (400, "InvalidInputError", {"json": {"pixels": []}}),
    "empty image": (400, "InvalidInputError", {"json": {"pixels": [[]]}}),
    "too many pixels": (400, "InvalidInputError", {"json": {"pixels": [[0] * 510] * 500}}),
    "strings for pixels": (422, "InvalidInputError", {"json": {"pixels": [["1"]]}}),
    "wrong JSON field": (422, "InvalidInputError", {"json": {"pixel": [[1]]}}),
    "bad max_value": (422, "InvalidInputError", {"json": {"pixels": [[1]], "max_value": 7}}),
    "not JSON": (422, "InvalidInputError", {"content": b"{nope"}),
    "plain text": (
        415,
        "UnsupportedMediaType",
        {"content": b"1", "headers": {"content-type": "text/plain"}},
    ),
    "broken multipart": (
        400,
        "InvalidInputError",
        {"content": b"--x\r\nnope", "headers": {"content-type": "multipart/form-data; boundary=x"}},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_are_4xx_with_a_json_error(
    client: TestClient, case: str, digits: list[tuple[np.ndarray, int]]
) -> None:
    status, kind, request = BAD_REQUESTS[case]
    if "content" in request and "headers" not in request:
        request = {**request, "headers": {"content-type": "application/json"}}
    answer = client.post("/v1/predict", **request)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["type"] == kind
    assert error["message"]
    assert client.get("/health").json() == {"status": "ok"}
    assert client.post("/v1/predict", files={"file": png_bytes(digits[0][0])}).status_code == 200


def test_truncated_file_is_refused(
    client: TestClient, digits: list[tuple[np.ndarray, int]]
) -> None:
    data = png_bytes(digits[0][0])
    answer = client.post("/v1/predict", files={"file": ("cut.png", data[: len(data) // 2])})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "DataFileError"
    assert "cut.png" in answer.json()["error"]["message"]


def test_decompression_bomb_is_refused_from_its_header(client: TestClient) -> None:
    # 20000 x 20000 pixels of one colour compress to a few hundred kilobytes; the limit
    # is checked from the header, so nothing that size is allocated.
    bomb = png_bytes(np.zeros((1, 1), np.uint8))
    header = bytearray(bomb)
    header[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width and height
    answer = client.post("/v1/predict", files={"file": ("bomb.png", bytes(header))})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "DataFileError"


def test_too_many_images(model: digitrec.DigitClassifier) -> None:
    client = TestClient(create_app(model, max_images=2))
    answer = client.post("/v1/predict", json={"pixels": [[[0]]] * 3})
    assert answer.status_code == 400
    files = [("file", ("a.png", png_bytes(np.zeros((4, 4), np.uint8))))] * 3
    assert client.post("/v1/predict", files=files).status_code == 400


def test_413_from_content_length_and_from_a_streamed_body(client: TestClient) -> None:
    big = b"0" * 1_200_000
    answer = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "RequestTooLarge"

    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"0" * 50_000

    streamed = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    upload = client.post("/v1/predict", files={"file": ("big.png", big)})
    assert upload.status_code == 413
    assert client.get("/health").status_code == 200


def test_api_key(model: digitrec.DigitClassifier) -> None:
    client = TestClient(create_app(model, api_key=KEY))
    body = {"pixels": [[0, 255], [255, 0]]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
        answer = client.post("/v1/predict", json=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "Unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/model").status_code == 401
    assert client.post("/v1/predict", json=body, headers={"X-API-Key": KEY}).status_code == 200
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert client.post("/v1/predict", json=body, headers=bearer).status_code == 200
    assert client.get("/v1/model", headers=bearer).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200


def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    assert client.get("/nowhere").json()["error"]["type"] == "NotFound"
    answer = client.get("/v1/predict")
    assert answer.status_code == 405
    assert answer.json()["error"]["type"] == "MethodNotAllowed"


def test_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-testid="pad"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/page.js")
    assert script.status_code == 200
    for text in (page.text, script.text, client.get("/static/page.css").text):
        assert "http://" not in text
        assert "https://" not in text


def test_create_app_checks_its_arguments(model: digitrec.DigitClassifier) -> None:
    with pytest.raises(digitrec.InvalidInputError):
        create_app(model, max_upload_bytes=0)
    with pytest.raises(digitrec.InvalidInputError):
        create_app(model, api_key="")
    with pytest.raises(digitrec.InvalidTypeError):
        create_app(42)  # type: ignore[arg-type]


def test_missing_extra_names_the_pip_command() -> None:
    with pytest.raises(digitrec.MissingDependencyError, match=r'pip install "digitrec\[serve\]"'):
        require("digitrec_no_such_module")


@pytest.mark.skipif(not HAS_PRETRAINED, reason="the bundled mnist-cnn weights are not built yet")
def test_without_a_model_the_bundled_cnn_is_served() -> None:
    info = TestClient(create_app()).get("/v1/model").json()
    assert info["source"] == "mnist-cnn (bundled)"
    assert info["arch"] == "cnn"


def test_micro_batcher_batches_and_isolates_errors() -> None:
    calls: list[int] = []

    def classify(images: list[torch.Tensor], prepare: bool | None) -> list[digitrec.Prediction]:
        calls.append(len(images))
        if any(image.sum() < 0 for image in images):
            raise digitrec.InvalidInputError("negative image")
        return [digitrec.Prediction(int(i.sum()), "x", (1.0,), 1.0, None) for i in images]

    def loader(value: float) -> Callable[[], list[torch.Tensor]]:
        return lambda: [torch.full((1, 2, 2) if value >= 0 else (1, 1, 1), value)]

    def unreadable() -> list[torch.Tensor]:
        raise digitrec.DataFileError("not an image")

    async def main() -> list[list[digitrec.Prediction] | BaseException]:
        batcher = MicroBatcher(classify, window=0.05, max_images=64)
        requests = [batcher.classify(loader(float(n)), 1, None) for n in range(8)]
        requests.append(batcher.classify(loader(-1.0), 1, None))
        requests.append(batcher.classify(unreadable, 1, None))
        results = await asyncio.gather(*requests, return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert [r[0].class_index for r in results[:8]] == [4 * n for n in range(8)]  # type: ignore[index]
    assert isinstance(results[8], digitrec.InvalidInputError)
    # The unreadable request fails alone, before any classification.
    assert isinstance(results[9], digitrec.DataFileError)
    assert calls[0] == 9  # one batch, then each request alone once it failed
    assert len(calls) == 10


def _counting(calls: list[int]) -> Callable[[list[torch.Tensor], bool | None], list[Prediction]]:
    """A stand-in for the model: records each batch's size, answers class 0."""

    def classify(images: list[torch.Tensor], prepare: bool | None) -> list[Prediction]:
        calls.append(len(images))
        return [digitrec.Prediction(0, "x", (1.0,), 1.0, None) for _ in images]

    return classify


def _one_blank_image() -> list[torch.Tensor]:
    return [torch.zeros(1, 2, 2)]


def test_micro_batcher_waits_only_while_requests_are_on_their_way() -> None:
    calls: list[int] = []
    classify = _counting(calls)

    async def main() -> tuple[float, list[int]]:
        batcher = MicroBatcher(classify, window=5.0, max_images=64)
        started = time.perf_counter()
        await batcher.classify(_one_blank_image, 1, None)  # alone: no 5 s wait for company
        alone = time.perf_counter() - started

        async def late() -> list[digitrec.Prediction]:
            with batcher.arriving():
                await asyncio.sleep(0.2)  # still being read when the first one queues
            return await batcher.classify(_one_blank_image, 1, None)

        await asyncio.gather(batcher.classify(_one_blank_image, 1, None), late())
        await batcher.close()
        return alone, calls

    alone, calls = asyncio.run(main())
    assert alone < 2.5
    assert calls == [1, 2]  # the second batch waited for the request on its way


def test_micro_batcher_waits_for_as_many_requests_as_the_last_batch_had() -> None:
    calls: list[int] = []
    classify = _counting(calls)

    async def timed(batcher: MicroBatcher) -> float:
        started = time.perf_counter()
        await batcher.classify(_one_blank_image, 1, None)
        return time.perf_counter() - started

    async def main() -> tuple[float, float]:
        batcher = MicroBatcher(classify, window=1.0, max_images=64)
        await asyncio.gather(*(batcher.classify(_one_blank_image, 1, None) for _ in range(3)))

        async def later() -> list[digitrec.Prediction]:
            await asyncio.sleep(0.1)  # not yet on its way when the first one queues
            return await batcher.classify(_one_blank_image, 1, None)

        await asyncio.gather(batcher.classify(_one_blank_image, 1, None), later())
        waited = await timed(batcher)  # the last batch had 2: wait the window, then go
        alone = await timed(batcher)  # the last batch had 1: no wait
        await batcher.close()
        return waited, alone

    waited, alone = asyncio.run(main())
    assert calls == [3, 2, 1, 1]  # the second request joined the first's batch
    assert waited >= 0.95
    assert alone < waited / 2


def test_micro_batcher_without_batching_classifies_each_request_alone() -> None:
    calls: list[int] = []

    def classify(images: list[torch.Tensor], prepare: bool | None) -> list[digitrec.Prediction]:
        calls.append(len(images))
        return [digitrec.Prediction(0, "x", (1.0,), 1.0, prepare) for _ in images]

    async def main() -> list[list[digitrec.Prediction]]:
        batcher = MicroBatcher(classify, window=0.05, max_images=1)
        two = [torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)]
        answers = await asyncio.gather(
            *(batcher.classify(lambda: two, 2, flag) for flag in (True, False, None))
        )
        await batcher.close()
        return answers

    answers = asyncio.run(main())
    assert calls == [2, 2, 2]
    assert [[a.out_of_distribution for a in answer] for answer in answers] == [
        [True, True],
        [False, False],
        [None, None],
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return bool(httpx.get(f"{url}/health", timeout=1).status_code == 200)
    except httpx.TransportError:
        return False


def wait_healthy(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _healthy(url):
            return
        time.sleep(0.2)
    raise AssertionError(f"no server at {url} after {seconds} s")


def test_real_http_on_localhost(
    model: digitrec.DigitClassifier, digits: list[tuple[np.ndarray, int]]
) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(model), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        files = [("file", (f"{i}.png", png_bytes(p))) for i, (p, _) in enumerate(digits[:3])]
        answer = httpx.post(f"{url}/v1/predict", files=files, timeout=30)
        assert answer.status_code == 200
        assert len(answer.json()["predictions"]) == 3
        bad = httpx.post(f"{url}/v1/predict", files={"file": ("x.png", b"junk")}, timeout=30)
        assert bad.status_code == 400
        assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


@contextlib.contextmanager
def cli_server(
    model_file: Path, *options: str, own_group: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``digitrec serve MODEL`` on a free port, once healthy; killed on the way out if it runs.

    Its stderr (the log) is piped: read it after the block.
    """
    port = free_port()
    command = [sys.executable, "-m", "digitrec", "serve", str(model_file), "--port", str(port)]
    process = subprocess.Popen(
        [*command, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=own_group,  # its own process group, as a terminal's job
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _log(process: subprocess.Popen[bytes]) -> str:
    assert process.stderr is not None
    return process.stderr.read().decode()


@pytest.mark.parametrize("option", [[], ["--no-model-process"]], ids=["default", "no-model"])
def test_cli_serve_stops_cleanly_on_sigterm(model_file: Path, option: list[str]) -> None:
    with cli_server(model_file, *option) as (process, _):
        # One worker: a model process by default (it and multiprocessing's resource
        # tracker are the server's children), none with --no-model-process.
        assert bool(_descendants(process.pid)) == (not option)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert "127.0.0.1" in _log(process)


def test_cli_serve_with_two_workers_answers_and_stops_cleanly(
    model_file: Path, digits: list[tuple[np.ndarray, int]]
) -> None:
    with cli_server(model_file, "--workers", "2", "--api-key", "k3y") as (process, url):
        workers = _descendants(process.pid)
        assert workers  # and, with workers, no model process below them by default
        assert not [pid for worker in workers for pid in _descendants(worker)]
        files = [("file", (f"{i}.png", png_bytes(p))) for i, (p, _) in enumerate(digits[:4])]
        # Every worker has the settings: the key is asked for, and each answer is whole.
        assert httpx.post(f"{url}/v1/predict", files=files, timeout=30).status_code == 401
        for _ in range(6):  # keep-alive off: new connections, spread over the workers
            answer = httpx.post(
                f"{url}/v1/predict", files=files, headers={"X-API-Key": "k3y"}, timeout=30
            )
            assert answer.status_code == 200
            assert len(answer.json()["predictions"]) == 4
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = _log(process)
    assert log.count("Application startup complete") == 2  # two workers started
    assert log.count("Finished server process") == 2  # and both stopped


def test_batching_on_gives_the_same_answers(
    model: digitrec.DigitClassifier, digits: list[tuple[np.ndarray, int]]
) -> None:
    files = [("file", (f"{i}.png", png_bytes(p))) for i, (p, _) in enumerate(digits)]
    with TestClient(create_app(model, max_batch_images=16, batch_window_ms=5)) as batched:
        on = batched.post("/v1/predict", files=files).json()["predictions"]
    off = TestClient(create_app(model)).post("/v1/predict", files=files).json()["predictions"]
    assert [p["class_index"] for p in on] == [p["class_index"] for p in off]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_model_process_answers_as_the_model_thread_does(
    model: digitrec.DigitClassifier, digits: list[tuple[np.ndarray, int]]
) -> None:
    files = [("file", (f"{i}.png", png_bytes(p))) for i, (p, _) in enumerate(digits[:6])]
    pixels = {"pixels": [p.tolist() for p, _ in digits[:2]], "max_value": 255}
    app = create_app(model, model_process=True)
    with TestClient(app) as client:
        child = app.state.model_process
        pid = child.pid
        assert pid is not None
        assert pid != os.getpid()
        from_files = client.post("/v1/predict", files=files).json()
        from_json = client.post("/v1/predict", json=pixels).json()
        bad = client.post("/v1/predict", files={"file": ("x.png", b"junk")})
    with TestClient(create_app(model)) as plain:
        assert plain.post("/v1/predict", files=files).json() == from_files
        assert plain.post("/v1/predict", json=pixels).json() == from_json
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "DataFileError"
    # The child stops with the app.
    assert child.pid is None
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def test_a_model_process_that_dies_is_answered_503_and_replaced(
    model: digitrec.DigitClassifier, model_file: Path, digits: list[tuple[np.ndarray, int]]
) -> None:
    from digitrec.serving._inputs import read_files
    from digitrec.serving._model_process import ModelProcess, ModelProcessStoppedError

    blobs = [png_bytes(p) for p, _ in digits[:3]]
    load = partial(read_files, blobs, ["a", "b", "c"], 1_000_000)
    child = ModelProcess(model_file)
    try:
        with pytest.raises(ModelProcessStoppedError, match="ended while it held"):
            child.run([(partial(os._exit, 3), None)])  # the child dies reading this request
        [answer] = child.run([(load, True)])  # a new child takes the next batch
        assert isinstance(answer, list)
        assert [p.class_index for p in answer] == digitrec.predict(
            model, [png_bytes(p) for p, _ in digits[:3]]
        ).tolist()
    finally:
        child.close()
    # Through the app: a request whose batch the child cannot take is answered 503.
    app = create_app(model, model_process=True)
    with TestClient(app) as client:
        connection = app.state.model_process._connection
        connection.close()
        stopped = client.post("/v1/predict", files={"file": ("a.png", blobs[0])})
        assert stopped.status_code == 503
        assert stopped.json()["error"]["type"] == "ServiceUnavailable"
        again = client.post("/v1/predict", files={"file": ("a.png", blobs[0])})
        assert again.status_code == 200
        assert client.get("/health").status_code == 200


def test_a_model_process_needs_a_model_it_can_save() -> None:
    unnamed = digitrec.DigitClassifier.from_module(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
        input_shape=(1, 28, 28),
        num_classes=10,
    )
    with pytest.raises(digitrec.InvalidInputError, match="register_network"):
        create_app(unnamed, model_process=True)
    with pytest.raises(digitrec.InvalidInputError, match="model_process"):
        create_app(unnamed, model_process="yes")  # type: ignore[arg-type]


def test_a_model_process_saves_only_a_model_object(
    model: digitrec.DigitClassifier,
    model_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    create_app(model_file, model_process=True)  # the child loads the file itself
    assert not list(tmp_path.iterdir())
    with TestClient(create_app(model, model_process=True)) as client:
        [folder] = tmp_path.iterdir()  # the object, saved for the child to load
        assert [f.name for f in folder.iterdir()] == ["served.safetensors"]
        assert client.post("/v1/predict", json={"pixels": [[0] * 28] * 28}).status_code == 200
    assert not list(tmp_path.iterdir())  # removed with the app's lifespan


def _descendants(pid: int) -> list[int]:
    found = []
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in tasks.read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def test_cli_serve_with_a_model_process_stops_cleanly_on_ctrl_c(model_file: Path) -> None:
    with cli_server(model_file, own_group=True) as (process, url):  # the default: a model process
        answer = httpx.post(f"{url}/v1/predict", json={"pixels": [[0] * 28] * 28}, timeout=30)
        assert answer.status_code == 200
        children = _descendants(process.pid)
        assert children  # the model process (and multiprocessing's resource tracker)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
        assert process.wait(timeout=30) == 0
    log = _log(process)
    assert "Traceback" not in log
    assert "Application shutdown complete" in log
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in children)
