"""The collector's throughput of two checkouts side by side, in one sitting (before/after a change).

    .venv/bin/python benchmarks/compare_collector_throughput.py BEFORE_DIR AFTER_DIR [--rounds 4] [--events 200000]

BEFORE_DIR and AFTER_DIR are checkouts of this repository (e.g. ``git archive <commit> | tar -x -C
/tmp/before``). Each round runs ``make bench-capture``'s throughput part (``bench_collector`` of that
checkout's ``benchmarks/bench_capture.py``: 200,000 events in batches of 1,000 from 2 clients, fsync
before every answer, live state off) once for each checkout, alternating which goes first, each in a
fresh process with that checkout's code first on ``PYTHONPATH``. Printed per run and as medians: events
per second of wall time and per CPU second of the collector process (the figure a busy shared machine
disturbs least), and the after/before ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RUN = """
import json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "benchmarks"))
import bench_capture
result = bench_capture.bench_collector(int(sys.argv[2]), 1000, 2)
result["load"] = os.getloadavg()[0]
print(json.dumps(result))
"""


def run(checkout: Path, events: int) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'orchestration'}:{checkout / 'capture-sdk' / 'src'}"}
    output = subprocess.run([sys.executable, "-c", RUN, str(checkout), str(events)], env=env, cwd=checkout,
                            capture_output=True, text=True, check=True, timeout=900).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for number in range(args.rounds):
        order = ("before", "after") if number % 2 == 0 else ("after", "before")
        for name in order:
            result = run(getattr(args, name).resolve(), args.events)
            results[name].append(result)
            print(f"round {number + 1} {name:6}: {result['events_per_second']:>8,.0f} events/s wall, "
                  f"{result['cpu_seconds']:.2f} CPU s = {result['events_per_cpu_second']:>8,.0f} events per CPU s "
                  f"(load {result['load']:.1f})", flush=True)
    medians = {name: {key: statistics.median(r[key] for r in runs) for key in ("events_per_second",
                                                                               "events_per_cpu_second")}
               for name, runs in results.items()}
    for name, median in medians.items():
        print(f"median {name:6}: {median['events_per_second']:>8,.0f} events/s wall, "
              f"{median['events_per_cpu_second']:>8,.0f} events per CPU s")
    print(f"after/before: wall {medians['after']['events_per_second'] / medians['before']['events_per_second']:.3f}, "
          f"per CPU second {medians['after']['events_per_cpu_second'] / medians['before']['events_per_cpu_second']:.3f}")


if __name__ == "__main__":
    main()
