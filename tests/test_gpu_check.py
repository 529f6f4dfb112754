"""benchmarks/gpu_check.py without a GPU: it stops at once with the probe's reason and writes nothing; each
of its steps is a command that exists and parses here; its report is well-formed Markdown."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import gpu_check
from minidl.cli import buildParser
from tests.backend.fakedriver import withDriver

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_gpu_it_stops_at_once_and_says_why(tmp_path):
    out = tmp_path / "report.md"
    environment = withDriver({**os.environ, "MINIDL_BACKEND": "", "FAKE_CUPY_FAILURE": "cublas",
                              "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "backend" / "fakecupypath"),
                                                             str(ROOT)])}, tmp_path / "driver")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--out", str(out)], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - start < 30
    assert result.returncode == 2 and not out.exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("benchmarks.gpu_check: no usable GPU here, nothing checked: ")
    assert "CuPy cannot multiply matrices" in line and "pip install 'cupy-cuda12x[ctk]'" in line


def test_every_step_is_a_command_that_exists_and_parses(tmp_path):
    steps = gpu_check.steps(str(tmp_path))
    assert [title for title, _, _ in steps][0] == "test suite on the CuPy backend"
    assert abs(sum(share for _, _, share in steps) - 1) < 1e-9
    for title, argv, _ in steps:
        module = argv[argv.index("-m") + 1] if "-m" in argv else None
        assert module is not None and importlib.util.find_spec(module) is not None, title
        if module == "minidl":
            args = buildParser().parse_args(argv[argv.index("-m") + 2:])
            assert args.device == "gpu", title
    mpi = next(argv for title, argv, _ in steps if "MPI" in title)
    assert mpi[1:3] == ["-n", "2"]


def test_the_report_is_markdown_with_a_row_per_step():
    results = [("test suite on the CuPy backend", [sys.executable, "-m", "pytest"], "passed", 93.2, "700 passed"),
               ("optimizer steps", [sys.executable, "-m", "benchmarks.optimizer_step"], "TIMED OUT after 67 s", 67.0,
                "| step | minidl ms |\n|---|---:|\n| SGD | 0.1 |")]
    text = gpu_check.report(["GPU: H100", "CuPy 14.2.0"], results)
    assert "| test suite on the CuPy backend | passed | 93 |" in text
    assert "| optimizer steps | TIMED OUT after 67 s | 67 |" in text
    assert "`python -m pytest`" in text and "```\n700 passed\n```" in text
    assert "| SGD | 0.1 |" in text and text.startswith("## GPU check (")
