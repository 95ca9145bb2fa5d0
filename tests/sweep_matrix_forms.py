"""A fast sweep for issue #16: random Hessians (``h``) or Jacobians of vectors in vectors (``j``), drawn with
the property test's strategy, derived and compared with central finite differences at two step sizes;
a disagreement where the two steps agree is re-checked with SymPy. Counts refusals, crashes, mismatches.

    PYTHONPATH=. python tests/sweep_matrix_forms.py h 4200 81     # mode, examples, seed

Not collected by pytest (no ``test_`` prefix): it runs for minutes, see docs/verification.md.
"""
import collections
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import test_property_derive as T  # noqa: E402
from finite_differences import first, random_values, second  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hseed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from matcalc import NoMatrixFormError  # noqa: E402
from matcalc import nodes as N  # noqa: E402
from matcalc.diff import derive  # noqa: E402
from matcalc.printing import to_text  # noqa: E402

MODE, COUNT, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tally: collections.Counter = collections.Counter()


def _fd(d, values, h):
    if MODE == "h":
        return second(d.function, d.variable, values, h=h)
    return first(d.function, d.variable, values, d.layout, h=h)


def _compare(d) -> str:
    """``agree``, or why the finite differences cannot decide, or the SymPy verdict on a disagreement."""
    try:
        with np.errstate(all="ignore"):
            values = random_values(d.function, seed=SEED, sizes={"n": 3, "m": 2})
            ours = np.asarray(d.evaluate(**values), float)
            a, b = (_fd(d, values, h) for h in ((1e-4, 1e-3) if MODE == "h" else (1e-6, 1e-5)))
    except Exception:
        return "evalerror"
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(ours))):
        return "nonfinite"
    scale = max(1.0, np.abs(a).max())
    if np.abs(a - b).max() > 1e-4 * scale:
        return "fd-unstable"
    if np.abs(ours - a).max() <= 1e-3 * scale:
        return "agree"
    report = d.check(points=2, exact=False, time_budget=30)
    if report.ok:
        return "fd-suspect-cleared"
    return "fd-suspect-undecided" if report.method == "timeout" else "MISMATCH"


@hseed(SEED)
@settings(max_examples=COUNT, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def run(data):
    e = data.draw(T.expr("s", 4) if MODE == "h" else T.expr("v", 5))
    vs = [s for s in N.symbols_of(e) if (s.shape == () or s.shape[1] == 1) and (MODE == "h" or s.shape != ())]
    if not vs:
        tally["novar"] += 1
        return
    v = data.draw(st.sampled_from(vs))
    layout = data.draw(st.sampled_from(["numerator", "denominator"]))
    try:
        d = derive(e, v, order=2) if MODE == "h" else derive(e, v, layout=layout)
    except NoMatrixFormError as err:
        outcome, detail = "REFUSED", str(err)[:300]
    except Exception as err:
        outcome, detail = "CRASH", f"{type(err).__name__} {str(err)[:300]}"
    else:
        outcome, detail = _compare(d), layout
    tally[outcome] += 1
    if outcome.isupper():
        print(outcome, to_text(e), "wrt", v.name, "::", detail, flush=True)


if __name__ == "__main__":
    run()
    print(dict(tally))
