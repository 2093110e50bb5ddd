"""Run every benchmark in turn (each prints its own table; paste the figures into
docs/benchmarks.md). Benchmarks are not tests: they measure, they do not assert."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["ingest_idle.py", "ingest_latency.py", "ingest_bulk.py", "sanitize_bench.py",
           "forecast_error.py", "descriptor_bench.py"]


def main() -> int:
    failed = 0
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
