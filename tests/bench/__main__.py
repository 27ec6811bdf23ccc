"""`make bench`: every benchmark, each against its baseline in the same run, as one table."""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import sys
import time

# Before the functions' modules are imported: they read these once.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from .common import BENCHMARKS, SCALE, Result, table


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo") as handle:
        mem_gib = int(handle.readline().split()[1]) / 1024 / 1024
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {cpus} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"


def main(names: list[str]) -> int:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    results: list[Result] = []
    for name in names or BENCHMARKS:
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(importlib.import_module(f"tests.bench.{name}").run())
        print(f"  {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"\nmachine: {machine()}\n")
    if SCALE == "smoke":  # tiny sizes: the figures say nothing, the steps all ran
        results = [dataclasses.replace(r, target="-", met=None) for r in results]
    print(table(results))
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
