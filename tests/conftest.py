"""Shared test setup: make the checkout importable even when pytest is run without ``python -m``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Hypothesis: random examples on a developer's machine (to find new cases), fixed ones in CI (CI=true), so
# that a landing is never blocked by a case drawn for the first time; the long runs are documented in
# docs/verification.md.
try:
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI") == "true":
        settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    pass
