"""A micro-batcher: requests that arrive together are classified in one call.

One worker task per event loop takes the first waiting request, gathers the
requests that arrive within ``window`` seconds (up to ``max_images`` images),
and classifies them in one :func:`~digitrec.classify` call on a worker thread,
so the event loop keeps accepting requests meanwhile and the model runs one
batch at a time. Requests that queue while a batch runs form the next batch.
Each request gets its own answers, or its own error: when a batch fails, its
requests are classified one by one so that one bad request cannot fail others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio.to_thread
import torch

from ..errors import DigitrecError
from ..inference import Prediction

#: ``classify(images, prepare)``: the model's road for a list of images.
Classify = Callable[[list[torch.Tensor], "bool | None"], list[Prediction]]


@dataclass
class _Job:
    images: list[torch.Tensor]
    prepare: bool | None
    done: asyncio.Future[list[Prediction]] = field(repr=False)


def _classify_alone(classify: Classify, job: _Job) -> list[Prediction] | Exception:
    try:
        return classify(job.images, job.prepare)
    except DigitrecError as error:
        return error


def _classify_jobs(classify: Classify, jobs: Sequence[_Job]) -> list[list[Prediction] | Exception]:
    """Classify the jobs, one call per ``prepare`` setting; one by one if a call fails."""
    answers: list[list[Prediction] | Exception] = [[] for _ in jobs]
    for prepare in {job.prepare for job in jobs}:
        members = [index for index, job in enumerate(jobs) if job.prepare == prepare]
        images = [image for index in members for image in jobs[index].images]
        try:
            predictions = classify(images, prepare)
        except DigitrecError:
            for index in members:
                answers[index] = _classify_alone(classify, jobs[index])
            continue
        start = 0
        for index in members:
            count = len(jobs[index].images)
            answers[index] = predictions[start : start + count]
            start += count
    return answers


class MicroBatcher:
    """Gather concurrent requests into batches for ``classify``; see the module docstring."""

    def __init__(self, classify: Classify, *, window: float, max_images: int) -> None:
        self._classify = classify
        self._window = window
        self._max_images = max_images
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def classify(self, images: list[torch.Tensor], prepare: bool | None) -> list[Prediction]:
        """Classify ``images`` in the next batch; return their predictions, in order."""
        loop = asyncio.get_running_loop()
        if self._max_images <= 1:
            # Without batching, each request is classified alone on a worker thread.
            return await anyio.to_thread.run_sync(self._classify, images, prepare)
        queue = self._start(loop)
        job = _Job(images, prepare, loop.create_future())
        queue.put_nowait(job)
        return await job.done

    async def close(self) -> None:
        """Stop the worker (pending requests are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = self._queue = self._loop = None

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Job]:
        # A test client may run each request on a new loop: the worker follows the loop.
        if self._queue is None or self._loop is not loop or self._worker is None:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue))
        elif self._worker.done():
            self._worker = loop.create_task(self._work(self._queue))
        return self._queue

    async def _gather(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        jobs = [await queue.get()]
        count = len(jobs[0].images)
        deadline = asyncio.get_running_loop().time() + self._window
        while count < self._max_images:
            if queue.empty():
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
            count += len(job.images)
        return jobs

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            jobs = await self._gather(queue)
            live = [job for job in jobs if not job.done.done()]
            try:
                answers = await anyio.to_thread.run_sync(_classify_jobs, self._classify, live)
            except Exception as error:  # handed to each waiting request
                answers = [error] * len(live)
            for job, answer in zip(live, answers, strict=True):
                if job.done.done():
                    continue
                if isinstance(answer, Exception):
                    job.done.set_exception(answer)
                else:
                    job.done.set_result(answer)
