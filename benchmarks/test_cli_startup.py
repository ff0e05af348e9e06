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
    commands = {"ft": [str(FT), "--help"], "llamafactory": [str(LF), "help"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm-up: both tools' files in the page cache
        _, out = wall(cmd)
        assert ("Usage" in out or "usage" in out) and len(out) > 200  # each printed its help
    for _ in range(ROUNDS):
        for name, cmd in commands.items():
            times[name].append(wall(cmd)[0])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the figures come from the runs above
    ft, lf = statistics.median(times["ft"]), statistics.median(times["llamafactory"])
    benchmark.extra_info.update({"ft_s": ft, "llamafactory_s": lf, "ratio": lf / ft, "rounds": times})
    print(f"\nft --help {ft:.3f} s ({min(times['ft']):.3f}..{max(times['ft']):.3f}); llamafactory-cli help {lf:.3f} s "
          f"({min(times['llamafactory']):.3f}..{max(times['llamafactory']):.3f}): {lf / ft:.1f}x")
