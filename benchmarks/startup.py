"""Start-up: how long ``import rfm_fast``, ``rfm --version``, ``rfm --help`` and ``rfm example``
take as whole processes (interpreter start included), against a bare ``python -c pass``.

Each command runs once untimed (``rfm example`` then finds its compiled kernels in the cache:
"warm"), then ``--runs`` times, the commands taking turns so that a slower spell of a shared
machine falls on all of them alike. Wall time is ``time.perf_counter`` around the process; CPU
time and peak RSS are the child's own (``os.wait4``; Linux counts the parent's RSS at the fork
into the child's peak, so about 15 MiB is a floor). Median, minimum and maximum are printed and
saved as JSON for docs/performance.md.

    python benchmarks/startup.py --runs 10
    python benchmarks/startup.py --rfm rfm --json benchmarks/results/startup.json

The library and the command line are those the interpreter imports. ``--baseline DIR`` times the
same commands of another checkout in the same rounds, for a before and after (they run in DIR with
``PYTHONPATH=DIR``; the checkout needs its ``rfm_fast_cli`` link to ``cli/``):

    git archive BASE | tar -x -C /tmp/base && ln -s cli /tmp/base/rfm_fast_cli
    python benchmarks/startup.py --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import machine  # type: ignore[import-not-found]

TARGETS_S = {"import rfm_fast": 0.2, "rfm --version": 0.15, "rfm --help": 0.15, "rfm example": 0.5}
"""The start-up targets of the performance issue (process wall, 2 cores)."""


def commands(rfm: list[str]) -> dict[str, list[str]]:
    """Name -> argv of each timed command; ``rfm`` is how the command line is started."""
    python = [sys.executable]
    return {
        "python -c pass": [*python, "-c", "pass"],
        "import rfm_fast": [*python, "-c", "import rfm_fast"],
        "rfm --version": [*rfm, "--version"],
        "rfm --help": [*rfm, "--help"],
        "rfm example": [*rfm, "example"],
    }


def run_once(argv: list[str], checkout: Path | None = None) -> dict[str, float]:
    """Run ``argv`` (output thrown away), in ``checkout`` if given, which it then imports rfm_fast
    from; its wall and CPU seconds and peak RSS."""
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=checkout
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            sys.exit(f"{shlex.join(argv)} failed ({process.returncode}): {message[-1:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command")
    parser.add_argument(
        "--rfm",
        default=f"{shlex.quote(sys.executable)} -m rfm_fast_cli",
        help="how to start the command line (default: this python -m rfm_fast_cli)",
    )
    parser.add_argument("--only", help="comma-separated names of the commands to time")
    parser.add_argument("--baseline", type=Path, help="a checkout to time in the same rounds")
    parser.add_argument("--json", type=Path, help="save the results here")
    parser.add_argument("--note", default="", help="saved with them (what the baseline is)")
    args = parser.parse_args()
    todo = commands(shlex.split(args.rfm))
    if args.only:
        todo = {name: todo[name] for name in args.only.split(",")}
    checkouts: dict[str, Path | None] = dict.fromkeys(todo)
    if args.baseline:
        for name in [name for name in todo if name.startswith(("rfm", "import"))]:
            todo[f"{name} (baseline)"] = todo[name]
            checkouts[f"{name} (baseline)"] = args.baseline.resolve()
    for name, argv in todo.items():  # warm-up: compile caches, page cache
        run_once(argv, checkouts[name])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in todo}
    for _ in range(args.runs):
        for name, argv in todo.items():
            runs[name].append(run_once(argv, checkouts[name]))
    results = []
    print(f"machine: {machine()}; {args.runs} runs each (median, min-max)")
    print(f"{'command':<29} {'wall s':>22} {'CPU s':>8} {'peak MiB':>9} {'target s':>9}")
    for name, measured in runs.items():
        wall = spread([run["wall_s"] for run in measured])
        cpu = spread([run["cpu_s"] for run in measured])
        peak = statistics.median(run["peak_rss_mib"] for run in measured)
        target = None if checkouts[name] else TARGETS_S.get(name)
        results.append(
            {
                "command": name,
                "argv": shlex.join(["python" if a == sys.executable else a for a in todo[name]]),
                "checkout": "baseline" if checkouts[name] else "this one",
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_mib": peak,
                "target_wall_s": target,
            }
        )
        shown = f"{wall['median']:.3f} ({wall['min']:.3f}-{wall['max']:.3f})"
        print(
            f"{name:<29} {shown:>22} {cpu['median']:>8.3f} {peak:>9.1f} "
            f"{'' if target is None else target:>9}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine(), "note": args.note, "runs": args.runs, "results": results}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
