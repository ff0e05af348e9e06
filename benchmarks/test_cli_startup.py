"""`ft --help` against `llamafactory-cli help` (LLaMA-Factory 0.9.5 in .peers/llamafactory, from
benchmarks/peers/setup_llamafactory.sh): wall time of each command as a fresh process, the same
rounds interleaved, one warm-up each (the page cache holds both tools' files). Goal (issue 12):
ft at most 0.3 s and at least 10x faster."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FT = Path(sys.executable).parent / "ft"
LF = ROOT / ".peers" / "llamafactory" / "bin" / "llamafactory-cli"
ROUNDS = 7


def wall(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-2000:]
    return seconds, done.stdout


@pytest.mark.skipif(not LF.exists(), reason="LLaMA-Factory peer not set up (benchmarks/peers/setup_llamafactory.sh)")
def test_ft_help_vs_llamafactory_help(benchmark):
    ft_cmd, lf_cmd = [str(FT), "--help"], [str(LF), "help"]
    for cmd in (ft_cmd, lf_cmd):  # each printed its help
        out = wall(cmd)[1]
        assert ("Usage" in out or "usage" in out) and len(out) > 200
    lf_times: list[float] = []

    def baseline() -> None:  # before each round, untimed by pytest-benchmark: LLaMA-Factory's run, timed here
        lf_times.append(wall(lf_cmd)[0])

    # pytest-benchmark times ft itself; the two alternate, one warm-up round each
    benchmark.pedantic(lambda: wall(ft_cmd), setup=baseline, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    ft_times = list(benchmark.stats.stats.data)
    lf_times = lf_times[1:]  # the warm-up round's
    ft, lf = statistics.median(ft_times), statistics.median(lf_times)
    benchmark.extra_info.update({"baseline": "llamafactory-cli help", "baseline_median_s": lf, "ratio": lf / ft,
                                 "baseline_rounds": lf_times, "ft_median_s": ft,
                                 "goals": {"ratio": ">= 10", "ft_median_s": "<= 0.3"}})
    print(f"\nft --help {ft:.3f} s ({min(ft_times):.3f}..{max(ft_times):.3f}); llamafactory-cli help {lf:.3f} s "
          f"({min(lf_times):.3f}..{max(lf_times):.3f}): {lf / ft:.1f}x")
