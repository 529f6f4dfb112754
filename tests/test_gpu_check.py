"""benchmarks/gpu_check.py without a GPU: it stops at once with the probe's reason and writes nothing; each
of its steps is a command that exists and parses here; its report is well-formed Markdown."""

import importlib
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
    assert steps[0].title.startswith("warm the kernel caches") and steps[1].title == "test suite on the CuPy backend"
    assert abs(sum(step.share for step in steps) - 1) < 1e-9
    for step in steps:
        argv = step.argv
        module = argv[argv.index("-m") + 1] if "-m" in argv else None
        assert module is not None and importlib.util.find_spec(module) is not None, step.title
        if module == "minidl":
            args = buildParser().parse_args(argv[argv.index("-m") + 2:])
            assert args.command == "profile" or args.device == "gpu", step.title
        elif module.startswith("benchmarks."):
            assert importlib.import_module(module).main is not None, step.title
    mpi = next(step for step in steps if "MPI" in step.title)
    assert mpi.argv[:3] == ["mpiexec", "-n", "2"] and mpi.tools == ("mpiexec",)
    predicted = [step.title for step in steps if step.title.endswith("predicted")]
    assert len(predicted) == len(gpu_check.PROFILED)


def test_the_report_is_markdown_with_a_row_per_step():
    suite = gpu_check.Step("test suite on the CuPy backend", [sys.executable, "-m", "pytest"], 0.5)
    suite.result = {"status": "passed", "seconds": 93.2, "output": "700 passed"}
    bench = gpu_check.Step("optimizer steps", [sys.executable, "-m", "benchmarks.optimizer_step"], 0.5, markdown=True)
    bench.result = {"status": "TIMED OUT after 67 s", "seconds": 67.0,
                    "output": "| step | minidl ms |\n|---|---:|\n| SGD | 0.1 |"}
    text = gpu_check.report(["GPU: H100", "CuPy 14.2.0"], [suite, bench], [("mlp (batch 128)", 1.5, None, 0.5, 0.4)])
    assert "| test suite on the CuPy backend | passed | 93 |" in text
    assert "| optimizer steps | TIMED OUT after 67 s | 67 |" in text
    assert "`python -m pytest`" in text and "```\n700 passed\n```" in text
    assert "| SGD | 0.1 |" in text and text.startswith("## GPU check (")
    assert "| mlp (batch 128) | 1.50 | — | 0.50 | 0.40 |" in text


def _python(code):
    return [sys.executable, "-c", code]


def test_a_bare_machine_gives_rows_not_exceptions(tmp_path, monkeypatch):
    """No mpiexec: a skipped row. A step that overruns: killed with its child at the deadline, a timed-out row. A
    step that crashes: a failed row. The report is on disk after every step, each row as it finished."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(gpu_check, "_tool", lambda name: None)
    child = tmp_path / "child.pid"
    out = tmp_path / "report.md"
    overrun = ("import subprocess, sys, time; "
               f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
               f"open({str(child)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    steps = [
        gpu_check.Step("crashes", _python("raise SystemExit('broken')"), 0.1),
        gpu_check.Step("reads the report", _python(f"print(open({str(out)!r}).read())"), 0.3),
        gpu_check.Step("MPI", ["mpiexec", "-n", "2", sys.executable, "-c", "pass"], 0.1, tools=("mpiexec",)),
        gpu_check.Step("needs torch", _python("pass"), 0.1, modules=("a_package_that_is_not_there",)),
        gpu_check.Step("overruns", _python(overrun), 0.4),
    ]
    start = time.perf_counter()
    passed = gpu_check.runAll(steps, 10, out, dict(os.environ), ["GPU: stubbed"], str(tmp_path), say=lambda _: None)
    assert time.perf_counter() - start < 30 and not passed
    text = out.read_text()
    assert "| crashes | FAILED (exit 1) |" in text
    assert "| crashes | FAILED (exit 1) |" in steps[1].result["output"]  # the report was there after step 1
    assert "| MPI | skipped: mpiexec is not on the PATH | 0 |" in text
    assert "| needs torch | skipped: a_package_that_is_not_there is not installed | 0 |" in text
    assert "| overruns | TIMED OUT after 4 s |" in text
    pid = int(child.read_text())
    for _ in range(50):  # the child of the killed step dies with its process group
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the overrunning step's child {pid} outlived its deadline")


def test_the_launch_benchmark_says_it_needs_a_gpu_where_there_is_none():
    """benchmarks.launch_overhead compares minidl's launches with CuPy's own: on NumPy or the simulated device (whose
    CuPy is the simulation's host work) it stops, naming the backend, instead of printing a meaningless table."""
    for name in ("numpy", "simulated"):
        run = subprocess.run([sys.executable, "-m", "benchmarks.launch_overhead", "--calls", "10"], cwd=ROOT,
                             env={**os.environ, "MINIDL_BACKEND": name}, capture_output=True, text=True, timeout=120)
        assert run.returncode == 1 and run.stdout == ""
        assert f"on a GPU (the backend here is {name})" in run.stderr and "minidl profile" in run.stderr
