"""`make chaos`: the chaos run at full size; prints its table and fails if a promise broke."""

from __future__ import annotations

import argparse
import sys

from .harness import ChaosRun, ChaosSettings


def main() -> int:
    defaults = ChaosSettings()
    parser = argparse.ArgumentParser(description="Push jobs through the local stack under faults.")
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    settings = ChaosSettings(jobs=args.jobs, seed=args.seed)
    outcome = ChaosRun(settings, say=lambda text: print(text, flush=True)).run()
    print(outcome.table())
    for failure in outcome.failures:
        print("BROKEN:", failure)
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
