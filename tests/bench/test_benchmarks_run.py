"""Every benchmark runs through at tiny sizes (BENCH_SMOKE=1), so none can break unseen.

The figures of such a run say nothing and no target is judged; `make bench` judges them.
The artifact benchmark is left out: it installs the functions' requirements from the
package registry, and the suite runs offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Not from __main__: it sets the functions' environment for a run of its own.
from tests.bench.common import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = [name for name in BENCHMARKS if name != "artifact"]

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", OFFLINE)
def test_the_benchmark_runs_through_at_tiny_sizes(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", name],
        env={**os.environ, "BENCH_SMOKE": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][2:]
    assert rows, f"{name} printed no row:\n{done.stdout}"
    # What a benchmark checks beside its figures still holds at any size.
    assert "DIFFERENT" not in done.stdout, done.stdout
