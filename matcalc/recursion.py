"""Python's recursion limit, raised for the duration of one matcalc call on a deep expression.

The lowest layer of matcalc (it imports nothing of matcalc): the parser, the typechecker, the printers, the
simplifier, differentiation and verification all walk deep trees recursively and share this one counter.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager


@contextmanager
def deep_recursion(limit: int = 40_000):
    """Raise Python's recursion limit for the duration of one matcalc call on a deep expression.

    The limit is process-wide, so the calls in progress are counted (under a lock) across threads: the
    limit is raised by the first to enter and restored only when the last one leaves; one thread's
    finishing call never lowers it under another that still needs it.
    """
    global _DEEP_USERS, _DEEP_SAVED
    with _DEEP_LOCK:
        if _DEEP_USERS == 0:
            _DEEP_SAVED = sys.getrecursionlimit()
        _DEEP_USERS += 1
        if sys.getrecursionlimit() < limit:
            sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        with _DEEP_LOCK:
            _DEEP_USERS -= 1
            if _DEEP_USERS == 0 and _DEEP_SAVED is not None and _DEEP_SAVED < sys.getrecursionlimit():
                sys.setrecursionlimit(_DEEP_SAVED)


_DEEP_LOCK = threading.Lock()
_DEEP_USERS = 0  # deep_recursion() calls in progress, in all threads
_DEEP_SAVED: int | None = None  # the limit before the first of them raised it


def _fresh_lock_in_child() -> None:
    """A forked child (``check()`` forks its worker) has one thread: a lock another thread of the parent held
    at the fork would never be released there, and that thread's deep_recursion() calls do not exist there."""
    global _DEEP_LOCK, _DEEP_USERS, _DEEP_SAVED
    _DEEP_LOCK = threading.Lock()
    _DEEP_USERS, _DEEP_SAVED = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)
