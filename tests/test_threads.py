"""Thread safety: derivations running in 8 threads at once give exactly the single-threaded results.

Node interning (one object per distinct node), the simplifier's per-call flags, the shared parser and the
process-wide recursion limit (``deep_recursion``) are all shared by the threads of one process, as they
are when a web server answers concurrent requests. A very short switch interval
(``sys.setswitchinterval(1e-6)``) makes the interpreter switch threads every few bytecodes, so races that
are rare in practice happen within seconds. Issue #12 found one wrong derivative (two terms missing) in
14,400 runs and ten spurious ``UnknownNameError``s before interning was guarded.

CI runs a bounded number of derivations (``MATCALC_THREADS_DERIVATIONS``, default 3,000, about 12 s);
``MATCALC_THREADS_FULL=1`` runs 50,000 (see docs/verification.md for the recorded run).
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

import matcalc

FULL = os.environ.get("MATCALC_THREADS_FULL") == "1"
DERIVATIONS = 50_000 if FULL else int(os.environ.get("MATCALC_THREADS_DERIVATIONS", "3000"))
#: CI stops early (counting what it did) after this many seconds; the full run never does.
TIME_CAP = None if FULL else 15.0
THREADS = 8

#: Parsed and printed by one task in every ``DEEP_EVERY``: needs the raised recursion limit while other
#: threads enter and leave ``deep_recursion`` (issue #12: one thread's parse lowered another's limit).
DEEP = "sum(" + "tanh(W " * 800 + "x" + ")" * 800 + ")"
DEEP_EVERY = 400

CASES = [
    ("a^3 b + sin(a) c + a b c", "a", {}, 1),  # the reproducer
    ("a^3 b + sin(a) c + a b c", "c", {}, 1),
    ("x' A x + sum(exp(B x))", "x", {}, 1),
    ("sum(exp(A x))", "x", {}, 2),
    ("-y' log(softmax(W x))", "W", {}, 1),
    ("logdet(S) + x' S x", "S", {"S": "symmetric(n)"}, 1),
    ("S x", "S", {"S": "symmetric(n)"}, 1),
    ("A X B", "X", {}, 1),
    ("norm(tanh(W x) - y)^2", "x", {}, 1),
    ("(x' x)^2", "x", {}, 2),
    ("sigmoid(w' x + b) where b: scalar", "w", {}, 1),
    ("tr(inv(X) A)", "X", {}, 1),
]


def _derive(case) -> str:
    if case is None:
        return str(matcalc.parse(DEEP))
    text, wrt, decls, order = case
    d = matcalc.derive(text, wrt, order=order, **decls)
    return f"{d}\n{d.unicode()}\n{d.latex()}"


def test_eight_threads_give_the_single_threaded_results():
    cases = CASES + [None]
    expected = [_derive(c) for c in cases]  # strings only: no node of a result stays alive between runs
    counter = iter(range(DERIVATIONS))
    lock = threading.Lock()
    done, failures = [0], []
    start = time.monotonic()

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None or (TIME_CAP is not None and time.monotonic() - start > TIME_CAP):
                return
            k = len(CASES) if i % DEEP_EVERY == DEEP_EVERY - 1 else i % len(CASES)
            try:
                got = _derive(cases[k])
            except Exception as exc:  # noqa: BLE001 - any exception is a failure, reported with its case
                got = f"{type(exc).__name__}: {exc}"
            with lock:
                done[0] += 1
                if got != expected[k]:
                    failures.append(("deep" if cases[k] is None else cases[k][0], got[:300]))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    elapsed = time.monotonic() - start
    print(f"\n{done[0]} derivations in {THREADS} threads, {elapsed:.1f} s, {len(failures)} differences")
    assert not failures, failures[:5]
    assert done[0] >= (DERIVATIONS if FULL else min(DERIVATIONS, 500))


def test_one_thread_leaving_deep_recursion_does_not_lower_the_limit_of_another():
    from matcalc.parser import deep_recursion

    base = sys.getrecursionlimit()
    entered, left = threading.Event(), threading.Event()
    seen = []

    def other():
        entered.wait(10)
        with deep_recursion():  # enters after this thread's first call raised the limit...
            left.set()
            time.sleep(0.05)  # ...which ends while this call is still in progress
            seen.append(sys.getrecursionlimit())

    t = threading.Thread(target=other)
    t.start()
    with deep_recursion():
        entered.set()
        left.wait(10)
    t.join()
    assert seen and seen[0] >= 40_000
    assert sys.getrecursionlimit() == base


def test_interning_under_concurrent_construction_gives_one_object():
    from matcalc import nodes as N
    from matcalc.shapes import Dim

    n = Dim("n")
    built: list[list] = [[] for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def worker(k):
        barrier.wait()
        for i in range(300):
            x = N.Symbol(f"v{i}", (n, 1))
            built[k].append(N.Add(N.MatMul(N.Transpose(x), x), N.Number(i)))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    for i in range(300):
        assert len({id(b[i]) for b in built}) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_locks_held_by_another_thread_at_a_fork_are_free_in_the_child():
    """check() forks its worker: a lock another thread held at that moment must not block the child."""
    from matcalc import nodes, parser

    held, release = threading.Event(), threading.Event()

    def holder():
        with nodes._TABLE_LOCK, parser._DEEP_LOCK, parser._PARSE_LOCK:
            held.set()
            release.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: every lock must be free, and derivation must work
            code = 1
            try:
                locks = (nodes._TABLE_LOCK, parser._DEEP_LOCK, parser._PARSE_LOCK)
                if all(lock.acquire(timeout=5) for lock in locks):
                    for lock in locks:
                        lock.release()
                    code = 0 if matcalc.derive("x' B x + sum(B)", "x").text() == "x' (B + B')" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        t.join()
    assert os.waitstatus_to_exitcode(status) == 0
