"""Budgets: how much time and memory one call of matcalc may spend, and the other size limits.

matcalc runs on text from anyone (the web page, notebooks, shell scripts), so no input may make it hang
or eat the machine. Every public entry point (``parse``, ``derive``, the printers, code generation and
``compile``, ``evaluate``, ``.steps``, ``to_sympy``) runs inside :func:`guarded`, which gives it a time
budget and a memory budget. Past either, the call stops with a :class:`BudgetError` that names the limit
hit; it never hangs.

How the budgets are enforced (see docs/reliability.md):

* **Cooperative checkpoints.** The loops that can grow with the input call :func:`checkpoint`: building a
  new node, every printer and code-printer step, the simplifier's and the differentiator's DAG walks,
  the numeric evaluator. Every 64th call compares the clock with the deadline and every 4096th the memory
  in use (the process's resident size on Linux) with the budget. This works in any thread.
* **An alarm**, in the main thread only and only when nobody else uses ``SIGALRM``: a timer fires every
  50 ms and runs the same comparison, which also stops work that never reaches a checkpoint (a SymPy
  determinant, a long ``str`` join).

A nested call (``derive`` printing its message, a printer calling another) shares its caller's budget.
The time is the CPU time of the calling thread since the start of the outermost call: a server that runs
many calls at once, or a machine under load, does not make honest calls fail (on an idle machine it is
the wall-clock time); the wall-clock time is bounded too, at ten times the budget (a safety net). A
string input adds 2 s per 100,000 characters (the 2 s default is meant for inputs of a few KB).

Configure with :func:`set_limits` (process-wide defaults) or :func:`limits` (a ``with`` block), e.g.
``with matcalc.limits(time=10, memory=2**31): ...``; the command line has ``--time-limit`` and
``--memory-limit``. ``None`` switches a budget off.
"""

from __future__ import annotations

import contextvars
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import MatcalcError, NestingError

__all__ = ["Limits", "BudgetError", "limits", "set_limits", "current_limits", "guarded", "checkpoint"]


class BudgetError(MatcalcError):
    """A call stopped because it hit a limit; ``limit`` says which (``"time"``, ``"memory"``, ...)."""

    def __init__(self, message: str, limit: str, position: int | None = None, source: str | None = None):
        super().__init__(message, position, source)
        self.limit = limit


class Limits:
    """The budgets of one call. ``time`` in seconds, ``memory`` in bytes of growth; ``None`` is no limit.

    ``output`` bounds the characters of one printed result (text, Unicode, LaTeX, code); ``digits`` the
    decimal digits of a number the simplifier folds (``2^10`` is folded to ``1024``; ``2^10000`` stays a
    power); ``exponent`` the largest integer power of a matrix whose differential is written out as a
    sum (``tr``, ``det`` and ``logdet`` of powers have closed forms at any exponent). Sizes of dimensions
    are limited by :data:`matcalc.names.MAX_SIZE`.
    """

    FIELDS = ("time", "memory", "output", "digits", "exponent")
    __slots__ = FIELDS

    def __init__(self, time: float | None = 2.0, memory: int | None = 1 << 30, output: int | None = 1_000_000,
                 digits: int = 1000, exponent: int = 64):
        self.time, self.memory, self.output, self.digits, self.exponent = time, memory, output, digits, exponent

    def replace(self, **changes) -> Limits:
        return Limits(**{**{f: getattr(self, f) for f in self.FIELDS}, **changes})

    def __eq__(self, other) -> bool:
        return isinstance(other, Limits) and all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self.FIELDS))

    def __repr__(self) -> str:
        return "Limits(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS) + ")"

    def validated(self) -> Limits:
        """Self, after checking every field (``time=inf`` and negative budgets are refused)."""
        for name in ("time", "memory", "output"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise BudgetError(f"the {name} limit must be a positive finite number or None, not {v!r}", name)
        for name in ("digits", "exponent"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BudgetError(f"the {name} limit must be a positive integer, not {v!r}", name)
        return self


_DEFAULT = [Limits()]
_OVERRIDE: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("matcalc_limits", default=None)


def current_limits() -> Limits:
    """The limits in force here: the innermost :func:`limits` block, else the defaults."""
    return _OVERRIDE.get() or _DEFAULT[0]


def set_limits(**changes) -> Limits:
    """Change the process-wide default limits (fields of :class:`Limits`); returns the new defaults."""
    _DEFAULT[0] = _changed(_DEFAULT[0], changes)
    return _DEFAULT[0]


def _changed(base: Limits, changes: dict) -> Limits:
    unknown = set(changes) - set(Limits.FIELDS)
    if unknown:
        raise BudgetError(f"unknown limit {sorted(unknown)[0]!r}; the limits are "
                          f"{', '.join(Limits.FIELDS)}", sorted(unknown)[0])
    return base.replace(**changes).validated()


@contextmanager
def limits(**changes) -> Iterator[Limits]:
    """A ``with`` block in which the given limits apply: ``with limits(time=10): derive(...)``."""
    token = _OVERRIDE.set(_changed(current_limits(), changes))
    try:
        yield current_limits()
    finally:
        _OVERRIDE.reset(token)


# --- the running budget -------------------------------------------------------------------------------------
def _rss() -> int | None:
    """Resident memory of this process in bytes (Linux), or None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


try:
    _PAGE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
    _PAGE = 4096


class _Run:
    """The budget of one outermost call: its deadline and the memory it started with."""

    __slots__ = ("limits", "what", "deadline", "wall_deadline", "allowed", "memory_base", "ticks", "active",
                 "paused")

    def __init__(self, lim: Limits, what: str, input_size: int = 0):
        self.limits = lim
        self.what = what
        #: the time limit, plus PER_CHARACTER for each character of a long input (a 100 KB sum parses in
        #: about a second: the 2 s are meant for inputs of a few KB)
        self.allowed = None if lim.time is None else lim.time + PER_CHARACTER * input_size
        self.deadline = None if self.allowed is None else _clock() + self.allowed
        self.wall_deadline = None if self.allowed is None else time.monotonic() + WALL_FACTOR * self.allowed
        # read at the first memory check (the 4,096th checkpoint or the first alarm, 50 ms in): a short
        # call never pays for reading /proc; what it allocates before then is not counted
        self.memory_base: int | None = None
        self.ticks = 0
        self.active = True
        self.paused = 0

    def check_time(self) -> None:
        if self.paused:
            return
        if self.deadline is not None and (_clock() > self.deadline or time.monotonic() > self.wall_deadline):
            self.fail(BudgetError(f"{self.what} stopped: it took longer than the time limit of "
                                  f"{self.allowed:.3g} s (matcalc.limits(time=...), --time-limit)", "time"))

    def check_memory(self) -> None:
        if self.limits.memory is None:
            return
        now = _rss()
        if self.memory_base is None:
            self.memory_base = now
            return
        if now is not None and now - self.memory_base > self.limits.memory:
            self.fail(BudgetError(f"{self.what} stopped: it needed more than the memory limit of "
                                  f"{_mb(self.limits.memory)} (matcalc.limits(memory=...), --memory-limit)",
                                  "memory"))

    def fail(self, err: BudgetError) -> None:
        raise err


def _clock() -> float:
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


if not hasattr(time, "CLOCK_THREAD_CPUTIME_ID"):  # pragma: no cover - not POSIX
    _clock = time.thread_time  # noqa: F811


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


#: Extra CPU seconds per character of a string input (2 s more per 100,000 characters).
PER_CHARACTER = 2e-5
#: The wall-clock time a call may take, as a multiple of its CPU budget: a loaded machine slows honest
#: calls, but nothing may run unbounded.
WALL_FACTOR = 10.0

#: One-time set-up (lazy imports, building the parser) run before the first budgeted call, outside its
#: budget: a first call must not pay for the process's start-up (matcalc/__init__.py registers it).
WARM_UP: list = []

_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("matcalc_run", default=None)


def checkpoint() -> None:
    """Called from the loops that can grow with the input; raises BudgetError past a budget."""
    run = _RUN.get()
    if run is None:
        return
    run.ticks += 1
    if run.ticks & 63 == 0:
        run.check_time()
        if run.ticks & 4095 == 0:
            run.check_memory()


def check_output(text_length: int, what: str = "the output") -> None:
    """Refuse a printed result longer than the output limit (called by the printers)."""
    lim = current_limits().output
    if lim is not None and text_length > lim:
        raise BudgetError(f"{what} would be longer than the output limit of {lim:,} characters "
                          "(matcalc.limits(output=...)); the expression shares subexpressions that "
                          "printing writes out again at each use", "output")


@contextmanager
def paused() -> Iterator[None]:
    """One-time work inside a call (building the parser on first use) that the time budget does not count."""
    run = _RUN.get()
    if run is None or run.deadline is None:
        yield
        return
    cpu, wall = _clock(), time.monotonic()
    run.paused += 1
    try:
        yield
    finally:
        run.paused -= 1
        run.deadline += _clock() - cpu
        run.wall_deadline += time.monotonic() - wall


@contextmanager
def guarded(what: str, input_size: int = 0) -> Iterator[None]:
    """Run one entry point under the budgets; RecursionError and MemoryError become MatcalcErrors."""
    if _RUN.get() is not None:  # a nested call shares the outer budget
        yield
        return
    while WARM_UP:  # once per process, before the clock starts: imports and the parser's tables
        WARM_UP.pop()()
    run = _Run(current_limits(), what, input_size)
    token = _RUN.set(run)
    alarm = _Alarm.start(run)
    try:
        yield
    except RecursionError:
        raise NestingError(f"{what} stopped: the expression is nested too deeply for Python's stack") from None
    except MemoryError:
        raise BudgetError(f"{what} stopped: the machine ran out of memory", "memory") from None
    finally:
        run.active = False
        if alarm is not None:
            alarm.stop()
        _RUN.reset(token)


try:  # the C module: the signal module's wrappers convert to enums (slow), and importing it costs 8 ms
    import _signal
except ImportError:  # pragma: no cover - another interpreter
    import signal as _signal
_ALRM = int(getattr(_signal, "SIGALRM", 14))
_REAL = int(getattr(_signal, "ITIMER_REAL", 0))
_DFL = int(_signal.SIG_DFL)


class _Alarm:
    """SIGALRM every 50 ms while a main-thread call runs: stops work that reaches no checkpoint."""

    INTERVAL = 0.05

    def __init__(self, run: _Run):
        self.run = run
        self.previous = None

    @classmethod
    def start(cls, run: _Run) -> _Alarm | None:
        if run.deadline is None and run.limits.memory is None:
            return None
        if not hasattr(_signal, "setitimer"):  # pragma: no cover - Windows
            return None
        try:
            if _signal.getsignal(_ALRM) not in (_DFL, None) or any(_signal.getitimer(_REAL)):
                return None  # someone else's alarm: leave it alone, the checkpoints still work
            alarm = cls(run)
            alarm.previous = _signal.signal(_ALRM, alarm._tick)  # ValueError outside the main thread
        except (ValueError, OSError):
            return None
        _signal.setitimer(_REAL, cls.INTERVAL, cls.INTERVAL)
        return alarm

    def _tick(self, signum, frame) -> None:
        run = self.run
        if not run.active:
            return
        # raised again at every tick while over budget, so code that swallows exceptions cannot hide it
        run.check_time()
        run.check_memory()

    def stop(self) -> None:
        _signal.setitimer(_REAL, 0, 0)
        _signal.signal(_ALRM, self.previous if self.previous is not None else _DFL)


def budgeted(what: str):
    """Decorator: run the function under :func:`guarded` (for the public entry points)."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with guarded(what, len(args[0]) if args and isinstance(args[0], str) else 0):
                return fn(*args, **kwargs)

        return inner

    return wrap


@contextmanager
def unbudgeted() -> Iterator[None]:
    """No time or memory budget inside (for work bounded another way, like check()'s killed worker)."""
    token = _RUN.set(None)
    override = _OVERRIDE.set(current_limits().replace(time=None, memory=None))
    try:
        yield
    finally:
        _OVERRIDE.reset(override)
        _RUN.reset(token)


def cap_worker_memory() -> None:
    """In a forked worker: its address space may grow by at most the memory limit (RLIMIT_AS), so a check
    at absurd sizes fails with MemoryError in the worker instead of swapping the machine."""
    lim = current_limits().memory
    if lim is None:
        return
    try:
        import resource

        with open("/proc/self/statm", "rb") as f:
            virtual = int(f.read().split()[0]) * _PAGE
        resource.setrlimit(resource.RLIMIT_AS, (virtual + lim, resource.RLIM_INFINITY))
    except (OSError, ValueError, ImportError, AttributeError):  # pragma: no cover - not Linux
        pass


def die_with_parent() -> None:
    """In a forked worker: be killed when the parent process dies (Linux prctl), and on other systems
    exit from a watchdog thread once the parent is gone, so no worker is left spinning after its caller."""
    import threading

    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(getattr(_signal, "SIGKILL", 9)), 0, 0, 0)
    except (OSError, AttributeError, TypeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="matcalc-watchdog").start()
