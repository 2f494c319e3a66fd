"""The benchmark script runs (at tiny sizes: `--quick`), so it cannot rot; its figures are
measured on a release build and kept in docs/BENCHMARKS.md, not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench.py"


def test_the_bench_script_runs_quick():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "step.reject, sample, prebuilt dict" in out.stdout
    assert "pipeline over 5,000 items" in out.stdout
