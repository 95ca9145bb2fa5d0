"""Worker processes with a deadline that kills: how the server keeps every derivation and check under a time
limit and keeps a slow check from delaying derivations.

Each worker is a separate Python process (the ``spawn`` start method, so it shares no threads or locks with
the server) that answers ``(endpoint, body)`` messages with :func:`matcalc.web.service.handle`. A job that
outlives its deadline has its process killed and replaced. Derivations and checks use separate pools, and
the check workers run at a lower CPU priority (``nice``), so a check that runs for its whole time limit
takes CPU time only that the derivations leave over. Work in separate processes also sidesteps matcalc's
node interning, which is process-wide state: no two derivations share a process at the same time.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
import warnings
from typing import Any


class JobTimeout(Exception):
    """A job that did not finish within its deadline (its worker was killed)."""


class PoolBusy(Exception):
    """More jobs are waiting than the pool accepts."""


def _serve(conn, niceness: int) -> None:
    """The worker's loop: answer jobs until the server closes the pipe."""
    if niceness:
        try:
            os.nice(niceness)
        except OSError:
            pass
    import matcalc

    from . import service

    # The pool is the clock here: a job past its time limit is killed and its worker replaced, so the
    # core's own CPU budget (2 s by default) must not cut a longer limit short. Output and memory
    # limits stay.
    matcalc.set_limits(time=None)
    # Replies carry the warnings; a worker must never print them: its standard error may be a pipe that
    # nobody reads, and a full pipe would block the worker.
    warnings.simplefilter("ignore")
    service.handle("derive", {"expr": "x' A x"})  # warm the caches before the first real job
    conn.send("ready")
    while True:
        try:
            endpoint, body = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            reply = service.handle(endpoint, body)
        except Exception as exc:  # a bug in matcalc: reported, the worker lives on
            reply = service.error_payload(exc)
            reply["error"]["message"] = f"internal error: {type(exc).__name__}: {exc}"
        conn.send(reply)


class _Worker:
    def __init__(self, niceness: int, slot: int):
        self.slot = slot  # which share of the requests it prefers (see WorkerPool.call's ``prefer``)
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        # not a daemon: a daemonic process may not fork, and the check forks its own time-limited child
        self.proc = ctx.Process(target=_serve, args=(child, niceness), name="matcalc-web-worker")
        self.proc.start()
        child.close()
        self.jobs = 0
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError("a matcalc worker process did not start")

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class WorkerPool:
    """``size`` worker processes; :meth:`call` runs one job on an idle worker under a deadline."""

    def __init__(self, size: int, niceness: int = 0, max_waiting: int = 1000, max_jobs: int = 20000):
        self.size = size
        self.max_jobs = max_jobs
        self.niceness = niceness
        self.max_waiting = max_waiting
        self.waiting = 0
        self._idle: list[_Worker] = []
        self._free: asyncio.Semaphore | None = None  # counts the idle workers
        self._all: set[_Worker] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._free = asyncio.Semaphore(0)
        workers = await asyncio.gather(*[loop.run_in_executor(None, _Worker, self.niceness, slot)
                                         for slot in range(self.size)])
        for w in workers:
            self._all.add(w)
            self._release(w)

    def _release(self, worker: _Worker) -> None:
        assert self._free is not None
        self._idle.append(worker)
        self._free.release()

    async def _acquire(self, prefer: int | None) -> _Worker:
        """An idle worker: the one of slot ``prefer % size`` if it is idle (it may remember the request's
        derivation), else the most recently used one."""
        assert self._free is not None, "start() the pool first"
        await self._free.acquire()
        if prefer is not None:
            for i, w in enumerate(self._idle):
                if w.slot == prefer % self.size:
                    return self._idle.pop(i)
        return self._idle.pop()

    def close(self) -> None:
        for w in list(self._all):
            w.kill()
        self._all.clear()

    async def call(self, endpoint: str, body: Any, timeout: float, prefer: int | None = None) -> dict:
        """The worker's reply to ``(endpoint, body)``; JobTimeout after ``timeout`` seconds of work.
        Requests with the same ``prefer`` go to the same worker when it is free."""
        if self.waiting >= self.max_waiting:
            raise PoolBusy(f"{self.waiting} requests are waiting")
        self.waiting += 1
        try:
            worker = await self._acquire(prefer)
        finally:
            self.waiting -= 1
        try:
            reply = await self._run(worker, endpoint, body, timeout)
        except BaseException:
            self._all.discard(worker)
            worker.kill()
            asyncio.get_running_loop().create_task(self._replace(worker.slot))
            raise
        worker.jobs += 1
        if worker.jobs >= self.max_jobs:  # a long-running server recycles its workers, so no state piles up
            self._all.discard(worker)
            worker.kill()
            asyncio.get_running_loop().create_task(self._replace(worker.slot))
        else:
            self._release(worker)
        return reply

    async def _run(self, worker: _Worker, endpoint: str, body: Any, timeout: float) -> dict:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = worker.conn.fileno()
        worker.conn.send((endpoint, body))
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        start = time.monotonic()
        try:
            await asyncio.wait_for(ready, timeout)
        except asyncio.TimeoutError:
            raise JobTimeout(f"stopped after {time.monotonic() - start:.1f} s") from None
        finally:
            loop.remove_reader(fd)
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            raise JobTimeout(f"the worker process died (exit code {worker.proc.exitcode})") from None

    async def _replace(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(None, _Worker, self.niceness, slot)
        self._all.add(worker)
        self._release(worker)
