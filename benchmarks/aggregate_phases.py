"""Where ``rfm_fast.core.arrays.aggregate`` spends its time: thread CPU seconds per kernel
(scatter, fold, table growth, compaction, gather) and wall seconds per phase of the buffered
partitions, on in-memory arrays.

CPU seconds per kernel move less than walls on a shared machine. Each kernel of
``rfm_fast._kernels.buffered`` that :mod:`rfm_fast.core.partitions` calls is timed with
``time.thread_time`` around the call; the fold's records and the scatter's rows are counted,
for nanoseconds a record. The arrays are the workload of ``arrays_throughput.py``, or
``--npy PREFIX`` loads ``PREFIX_keys.npy``, ``PREFIX_ts.npy`` (int64 microseconds) and
``PREFIX_amounts.npy``.

    python benchmarks/aggregate_phases.py --orders 100M --customers 5M --threads 2
    python benchmarks/aggregate_phases.py --orders 10M --customers 500K --layout sorted
"""

from __future__ import annotations

import argparse
import collections
import threading
import time

import numpy as np
from arrays_throughput import workload  # type: ignore[import-not-found]
from generate import parse_count  # type: ignore[import-not-found]

from rfm_fast.core import aggregator, arrays, partitions

_cpu: dict[str, float] = collections.defaultdict(float)
_items: dict[str, int] = collections.defaultdict(int)
_wall: dict[str, float] = collections.defaultdict(float)
_lock = threading.Lock()
# Kernels whose items are counted: scatters from their first argument to the row they
# return, folds from their start argument to the record they return.
_SCATTERS = ("scatter_int_rows", "scatter_int_runs", "scatter_int_runs_plain")
_FOLDS = ("fold_records", "fold_runs")


class _TimedKernels:
    """The kernels module, each function timed in thread CPU seconds."""

    def __init__(self, module) -> None:
        self._module = module

    def __getattr__(self, name: str):
        function = getattr(self._module, name)
        if not callable(function) or name[:1].isupper():
            return function

        def timed(*args):
            started = time.thread_time()
            result = function(*args)
            spent = time.thread_time() - started
            with _lock:
                _cpu[name] += spent
                if name in _SCATTERS:
                    _items[name] += int(result) - int(args[0])
                elif name in _FOLDS:
                    start = args[4] if name == "fold_records" else args[1]
                    _items[name] += int(result) - int(start)
            return result

        return timed


def _timed_method(owner, name: str, label: str) -> None:
    method = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _wall[label] += time.perf_counter() - started

    setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="10M")
    parser.add_argument("--customers", default="500K")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layout", choices=("shuffled", "sorted"), default="shuffled")
    parser.add_argument("--npy", help="load PREFIX_keys/_ts/_amounts.npy instead")
    args = parser.parse_args()
    if args.npy:
        keys = np.load(f"{args.npy}_keys.npy")
        when = np.load(f"{args.npy}_ts.npy").view("datetime64[us]")
        amount = np.load(f"{args.npy}_amounts.npy")
    else:
        keys, when, amount = workload(parse_count(args.orders), parse_count(args.customers))
    if args.layout == "sorted":
        order = np.argsort(keys, kind="stable")
        keys, when, amount = keys[order], when[order], amount[order]
        del order
    partitions.kernels = _TimedKernels(partitions.kernels)
    _timed_method(partitions.BufferedPartitions, "_fold", "fold (growth included)")
    _timed_method(partitions.PartitionTables, "grow_slots", "growth")
    _timed_method(partitions.BufferedPartitions, "_allocate", "buffer allocation")
    _timed_method(partitions.BufferedPartitions, "finish", "compaction")
    _timed_method(aggregator.CustomerAggregator, "update", "scatter and folds")
    _timed_method(aggregator.CustomerAggregator, "finish", "finish (compaction, sort, gather)")
    arrays.aggregate(keys[:100_000], when[:100_000], amount[:100_000], threads=args.threads)
    n = keys.shape[0]
    for run in range(args.repeat):
        _cpu.clear()
        _items.clear()
        _wall.clear()
        started, cpu = time.perf_counter(), time.process_time()
        metrics = arrays.aggregate(keys, when, amount, threads=args.threads)
        wall = time.perf_counter() - started
        print(
            f"run {run}: {n / wall / 1e6:.1f}M orders/s (wall {wall:.2f} s, process CPU "
            f"{time.process_time() - cpu:.2f} s, {len(metrics):,} customers, {args.layout}, "
            f"{args.threads} threads)"
        )
        print("  wall s:", ", ".join(f"{k} {v:.3f}" for k, v in _wall.items()))
        for name, spent in sorted(_cpu.items(), key=lambda item: -item[1]):
            per = f", {spent / _items[name] * 1e9:.1f} ns an item" if _items.get(name) else ""
            print(f"  {name}: {spent:.3f} CPU s{per}")


if __name__ == "__main__":
    main()
