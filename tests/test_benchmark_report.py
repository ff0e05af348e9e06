"""`python -m benchmarks.report results.json`: every goal a benchmark named, its value and whether it
is met, as a table and a PNG chart."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RESULTS = {
    "machine_info": {"python_version": "3.11.7", "ft_device": "cpu (2 cores, 1 torch threads)",
                     "ft_versions": {"torch": "2.13.0", "ft-serve": "0.1.0"}},
    "benchmarks": [
        {"name": "test_ft_help_vs_llamafactory_help",
         "extra_info": {"ratio": 24.3, "ft_median_s": 0.238, "goals": {"ratio": ">= 10", "ft_median_s": "<= 0.3"}}},
        {"name": "test_stream_decode", "extra_info": {"ratios": {"peer": 1.41}, "goals": {"peer": ">= 2", "gone": "<= 1"}}},
        {"name": "test_no_goals", "extra_info": {"speedup": 3.0}},
    ],
}


def test_the_report_prints_each_goal_and_draws_the_chart(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS))
    done = subprocess.run([sys.executable, "-m", "benchmarks.report", str(path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("device: cpu (2 cores") and "ft-serve 0.1.0" in lines[0]
    assert "| test_ft_help_vs_llamafactory_help | ratio | 24.3 | >= 10 | yes |" in lines
    assert "| test_ft_help_vs_llamafactory_help | ft_median_s | 0.238 | <= 0.3 | yes |" in lines
    assert "| test_stream_decode | peer | 1.41 | >= 2 | **no** |" in lines
    assert "| test_stream_decode | gone | missing | <= 1 | ? |" in lines  # a goal without its figure is shown
    assert not any("test_no_goals" in line for line in lines)
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
