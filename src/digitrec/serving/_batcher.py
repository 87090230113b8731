"""A micro-batcher: requests that arrive together are read and classified in one call.

All model work runs on one dedicated thread, off the event loop: a request
hands over a ``load`` function (decode its files, or check its JSON pixels) and
the thread runs the loads of a batch, then one :func:`~digitrec.classify` call
for all their images. The event loop keeps accepting requests meanwhile, and one
hop to the thread per batch replaces two per request (a decode, then a
classification). A worker task gathers the requests that arrive within
``window`` seconds of the first (up to ``max_images`` images), but waits only
while some request is still on its way (counted by :meth:`MicroBatcher.arriving`
from the moment its handler starts reading it) or while it holds fewer requests
than the last batch had: clients that just got their answers tend to send their
next request within a few milliseconds, and a batch that waits for them saves the
model a call (without it, batches alternate between large and nearly empty). When
every request the server holds is queued and the batch is as large as the last, it
starts at once, so a lone client's request waits for nobody, and a burst that ends
costs one window at most. Requests that queue while a batch runs form the next
batch. Each request gets its own answers, or its own error: a request whose files
cannot be read fails alone, and when a batch's classification fails its requests
are classified one by one, so one bad request cannot fail others. With
``max_images`` of 1 each request is its own batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import torch

from ..errors import DigitrecError
from ..inference import Prediction

#: ``classify(images, prepare)``: the model's road for a list of images.
Classify = Callable[[list[torch.Tensor], "bool | None"], list[Prediction]]
#: Reads one request's images (raising ``DigitrecError`` for bad ones); runs on the model thread.
Load = Callable[[], list[torch.Tensor]]
#: A request's predictions, or its own error.
Answer = list[Prediction] | BaseException
#: Reads and classifies a batch of requests (each a ``load`` and its ``prepare``).
Runner = Callable[[list[tuple[Load, "bool | None"]]], list[Answer]]


@dataclass
class _Job:
    load: Load
    count: int
    prepare: bool | None
    done: asyncio.Future[list[Prediction]] = field(repr=False)


def _classify_alone(classify: Classify, images: list[torch.Tensor], prepare: bool | None) -> Answer:
    try:
        return classify(images, prepare)
    except DigitrecError as error:
        return error


def _load(load: Load) -> list[torch.Tensor] | BaseException:
    try:
        return load()
    except Exception as error:  # this request's own failure, answered to it alone
        return error


def run_jobs(classify: Classify, jobs: Sequence[tuple[Load, bool | None]]) -> list[Answer]:
    """Run each job's ``load``, then classify the images, one call per ``prepare`` setting."""
    answers: list[Answer] = [[] for _ in jobs]
    loaded: dict[int, list[torch.Tensor]] = {}
    for index, (load, _) in enumerate(jobs):
        images = _load(load)
        if isinstance(images, BaseException):
            answers[index] = images
        else:
            loaded[index] = images
    for prepare in {jobs[index][1] for index in loaded}:
        members = [index for index in loaded if jobs[index][1] == prepare]
        images = [image for index in members for image in loaded[index]]
        try:
            predictions = classify(images, prepare)
        except DigitrecError:
            for index in members:
                answers[index] = _classify_alone(classify, loaded[index], prepare)
            continue
        start = 0
        for index in members:
            count = len(loaded[index])
            answers[index] = predictions[start : start + count]
            start += count
    return answers


class MicroBatcher:
    """Gather concurrent requests into batches for ``classify``; see the module docstring."""

    def __init__(
        self, classify: Classify, *, window: float, max_images: int, runner: Runner | None = None
    ) -> None:
        self._runner: Runner = partial(run_jobs, classify) if runner is None else runner
        self._window = window
        self._max_images = max_images
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._arriving = 0
        # Requests in the last batch: their clients are likely to send the next ones soon.
        self._expected = 0

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Count a request as on its way to :meth:`classify` while it is read."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def classify(self, load: Load, count: int, prepare: bool | None) -> list[Prediction]:
        """Run ``load`` (``count`` images) and classify its images in the next batch.

        Returns the predictions in order; raises what ``load`` or the
        classification raised for this request.
        """
        loop = asyncio.get_running_loop()
        job = _Job(load, count, prepare, loop.create_future())
        if self._max_images <= 1:
            [answer] = await self._run(loop, [job])
            if isinstance(answer, BaseException):
                raise answer
            return answer
        self._start(loop).put_nowait(job)
        return await job.done

    async def close(self) -> None:
        """Stop the worker (pending requests are cancelled) and the model thread."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
        self._worker = self._queue = self._loop = self._thread = None

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> list[Answer]:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="digitrec-model")
        batch = [(job.load, job.prepare) for job in jobs]
        return await loop.run_in_executor(self._thread, self._runner, batch)

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Job]:
        # A test client may run each request on a new loop: the worker follows the loop.
        if self._queue is None or self._loop is not loop or self._worker is None:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work(loop, self._queue))
        elif self._worker.done():
            self._worker = loop.create_task(self._work(loop, self._queue))
        return self._queue

    async def _gather(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        jobs = [await queue.get()]
        count = jobs[0].count
        deadline = asyncio.get_running_loop().time() + self._window
        while count < self._max_images:
            if queue.empty():
                if self._arriving == 0 and len(jobs) >= self._expected:
                    break  # every request the server holds is in the batch
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                job = queue.get_nowait()
            jobs.append(job)
            count += job.count
        self._expected = len(jobs)
        return jobs

    async def _work(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Job]) -> None:
        while True:
            jobs = await self._gather(queue)
            live = [job for job in jobs if not job.done.done()]
            try:
                answers = await self._run(loop, live)
            except Exception as error:  # handed to each waiting request
                answers = [error] * len(live)
            for job, answer in zip(live, answers, strict=True):
                if job.done.done():
                    continue
                if isinstance(answer, BaseException):
                    job.done.set_exception(answer)
                else:
                    job.done.set_result(answer)
