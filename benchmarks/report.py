"""One table and one chart from a benchmark run: every ratio a benchmark recorded, against its goal.

    .venv/bin/python -m pytest benchmarks --benchmark-json=results.json
    .venv/bin/python -m benchmarks.report results.json [--png ratios.png]

A benchmark names its goals in ``extra_info["goals"]`` (``{"speedup": ">= 2", "ratio": "<= 1.2"}``),
each key a figure in ``extra_info`` or in its ``ratios``; the run's device, Python and package
versions come from ``machine_info`` (benchmarks/conftest.py adds them). Printed: benchmark, figure,
value, goal, met or not; the PNG shows each figure as a share of its goal (1.0: exactly at it).
"""

from __future__ import annotations

import argparse
import json
import operator
from pathlib import Path

OPS = {"<=": operator.le, ">=": operator.ge}


def rows(report: dict) -> list[dict]:
    """(benchmark, figure, value, goal, met) for every goal every benchmark named."""
    out = []
    for bench in report.get("benchmarks", []):
        info = bench.get("extra_info", {})
        figures = {**info.get("ratios", {}), **{k: v for k, v in info.items() if isinstance(v, (int, float))}}
        for key, goal in info.get("goals", {}).items():
            op, bound = goal.split()
            value = figures.get(key)
            met = None if value is None else OPS[op](value, float(bound))
            out.append({"benchmark": bench["name"], "figure": key, "value": value, "goal": goal, "met": met})
    return out


def table(report: dict) -> str:
    machine = report.get("machine_info", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("ft_versions", {}).items())
    lines = [f"device: {machine.get('ft_device', machine.get('cpu', {}).get('brand_raw', '?'))}; "
             f"python {machine.get('python_version', '?')}; {versions}", "",
             "| benchmark | figure | value | goal | met |", "|---|---|---|---|---|"]
    for r in rows(report):
        value = "missing" if r["value"] is None else f"{r['value']:.3g}"
        met = {True: "yes", False: "**no**", None: "?"}[r["met"]]
        lines.append(f"| {r['benchmark']} | {r['figure']} | {value} | {r['goal']} | {met} |")
    return "\n".join(lines)


def chart(report: dict, path: Path) -> Path:
    """Each figure over its bound (for a >= goal, the bound over the figure): under 1 meets the goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [r for r in rows(report) if r["value"] is not None]
    shares = []
    for r in data:
        op, bound = r["goal"].split()
        shares.append(r["value"] / float(bound) if op == "<=" else float(bound) / r["value"])
    labels = [f"{r['benchmark'].removeprefix('test_')}: {r['figure']}" for r in data]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(data) + 1.2))
    ax.barh(labels, shares, color=["tab:green" if s <= 1 else "tab:red" for s in shares])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("share of the goal (<= 1 meets it)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--png", type=Path, help="the chart (default: beside the JSON, .png)")
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    print(table(report))
    if rows(report):
        print(f"\nchart: {chart(report, args.png or args.results.with_suffix('.png'))}")


if __name__ == "__main__":
    main()
