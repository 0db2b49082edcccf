"""Bar chart of a compare.py JSON result (wall time and peak RSS per engine and mode).

python benchmarks/plot.py results.json -o docs/performance.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(results: dict, output: Path) -> None:
    runs = [r for r in results["results"] if "error" not in r]
    modes = [m for m in ("rows", "distinct") if any(r["mode"] == m for r in runs)]
    engines = list(dict.fromkeys(r["engine"] for r in runs))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(len(modes), 1)
    for k, mode in enumerate(modes):
        by_engine = {r["engine"]: r for r in runs if r["mode"] == mode}
        xs = [i + k * width for i in range(len(engines))]
        walls = [by_engine[e]["wall_s"] if e in by_engine else 0 for e in engines]
        rss = [by_engine[e]["peak_rss_bytes"] / 1e9 if e in by_engine else 0 for e in engines]
        label = "frequency = rows" if mode == "rows" else "frequency = distinct orders"
        axes[0].bar(xs, walls, width, label=label)
        axes[1].bar(xs, rss, width, label=label)
    for ax, title in zip(axes, ("wall time (s)", "peak RSS (GB)"), strict=True):
        ax.set_xticks([i + width * (len(modes) - 1) / 2 for i in range(len(engines))])
        ax.set_xticklabels(engines, rotation=20)
        ax.set_title(title)
        ax.legend(fontsize=8)
    figure.suptitle(
        f"{Path(results['file']).name} on {results['machine'].split(',')[0]}", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(output, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    plot(json.loads(args.results.read_text()), args.output)


if __name__ == "__main__":
    main()
