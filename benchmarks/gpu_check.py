"""The GPU check: one command that proves minidl's GPU path on a machine with an NVIDIA GPU and CuPy, and
writes one Markdown report to paste into benchmarks/README.md.

    python -m benchmarks.gpu_check [--out gpu_check.md] [--budget 480]

With no usable GPU it stops at once, saying why (the backend probe's reason). Otherwise it runs, on the CuPy
backend (MINIDL_BACKEND=cupy), without network, each step in a process group of its own with its share of
--budget seconds (the group is killed, children included, at the deadline): first one epoch of the CNN to warm
the kernel caches, then the whole test suite, then (whatever the suite reached) minidl's own cuBLAS products and
Conv2D's bias kernels against float64; ``python -m minidl train --device gpu`` with the MLP and with the
CNN; the MLP on 2 MPI ranks sharing one GPU; the measured training step of each profiled model beside the
simulated device's prediction for it (``minidl profile``); and the benchmarks (minidl's Python per launch beside
CuPy's own call, optimizer steps against the copy bandwidth measured in the same run, conv and training steps, each
against PyTorch where it imports). A step whose tool or package is missing (``mpiexec``, torch) is a "skipped:
reason" row, never an exception. The report is rewritten after every step, so a check cut short keeps what it
measured.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from minidl.errors import BackendError

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROFILED = (("mlp", 128, None), ("cnn", 128, None), ("resnet18", 32, "3x32x32"))  # model, batch, input


@dataclass
class Step:
    """One step of the check: a command, its share of the budget, and what it needs to run at all."""

    title: str
    argv: list
    share: float
    tools: tuple = ()  # programs that must be on the PATH (or beside the Python)
    modules: tuple = ()  # Python packages that must import
    markdown: bool = False  # its output is Markdown (a benchmark's tables): shown as it is
    result: dict = field(default_factory=dict)


def _tool(name):
    return shutil.which(name, path=str(pathlib.Path(sys.executable).parent)) or shutil.which(name)


def steps(workdir):
    """The steps of the check, in order; argv[0] is the Python running this check (or mpiexec)."""
    python = sys.executable
    train = [python, "-m", "minidl", "train", "--device", "gpu"]
    measured = [Step(f"step time of {model}, measured", [python, "-m", "benchmarks.step_time", "--model", model,
                                                         "--batch-size", str(batch),
                                                         *(["--input", shape] if shape else []),
                                                         "--json", f"{workdir}/measured-{model}.json"], 0.02)
                for model, batch, shape in PROFILED]
    predicted = [Step(f"step time of {model}, predicted", [python, "-m", "minidl", "profile", "--model", model,
                                                           "--batch-size", str(batch),
                                                           *(["--input", shape] if shape else []),
                                                           "--json", f"{workdir}/predicted-{model}.json"], 0.02)
                 for model, batch, shape in PROFILED]
    return [
        Step("warm the kernel caches (one epoch of the CNN)",
             [*train, "--model", "cnn", "--batch-size", "32", "--epochs", "1", "--out", f"{workdir}/warm"], 0.04),
        Step("test suite on the CuPy backend", [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], 0.24),
        Step("CUDA graphs: live values, captured steps and forward passes against ordinary ones",
             [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/backend/test_devicegraph.py",
              "tests/train/test_capturedstep.py", "tests/nn/test_captured.py"], 0.02),
        Step("cuBLAS products and Conv2D's bias kernels against float64 (whatever the suite reached)",
             [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/backend/test_products.py",
              "tests/nn/test_conv_bias_kernels.py"], 0.02),
        Step("train the MLP on the GPU", [*train, "--epochs", "5", "--out", f"{workdir}/mlp"], 0.05),
        Step("train the CNN on the GPU", [*train, "--model", "cnn", "--batch-size", "32", "--lr", "0.05", "--epochs",
                                          "5", "--out", f"{workdir}/cnn"], 0.06),
        Step("train the MLP on 2 MPI ranks, one GPU", ["mpiexec", "-n", "2", *train, "--epochs", "3",
                                                       "--out", f"{workdir}/mpi"], 0.07, tools=("mpiexec",),
             modules=("mpi4py",)),
        *measured, *predicted,
        Step("minidl's Python per launch beside CuPy's", [python, "-m", "benchmarks.launch_overhead"], 0.02,
             markdown=True),
        Step("optimizer steps", [python, "-m", "benchmarks.optimizer_step"], 0.12, markdown=True),
        Step("conv forward and backward", [python, "-m", "benchmarks.conv", "--repeats", "10"], 0.10,
             modules=("torch",), markdown=True),
        Step("training steps", [python, "-m", "benchmarks.train_step", "--repeats", "7"], 0.14, markdown=True),
    ]


def missing(step):
    """Why ``step`` cannot run here (a tool or package absent), or None."""
    for tool in step.tools:
        if _tool(tool) is None:
            return f"skipped: {tool} is not on the PATH"
    for module in step.modules:
        if importlib.util.find_spec(module) is None:
            return f"skipped: {module} is not installed"
    return None


def runStep(argv, seconds, env):
    """(status, seconds taken, output) of one command run in a process group of its own, which is killed with
    all its children after ``seconds``."""
    if argv[0] == "mpiexec":
        argv = [_tool("mpiexec"), *argv[1:]]
    start = time.perf_counter()
    try:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
    except OSError as error:
        return f"FAILED to start ({error})", time.perf_counter() - start, ""
    try:
        output, _ = process.communicate(timeout=seconds)
        status = "passed" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the step and every child it started (MPI ranks, workers)
        output, _ = process.communicate()
        status = f"TIMED OUT after {seconds:.0f} s"
    return status, time.perf_counter() - start, output or ""


def machineLines():
    """What the numbers were taken on: the GPU, its driver, CuPy, CUDA and NVRTC versions."""
    from minidl.backend.device import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(0)
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    nvrtc = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
    return [f"GPU: {properties['name'].decode()} ({cupy.cuda.runtime.getDeviceCount()} visible), compute capability "
            f"{properties['major']}.{properties['minor']}, driver {cupy.cuda.runtime.driverGetVersion()}",
            f"CuPy {cupy.__version__}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, NVRTC {nvrtc}; "
            f"Python {sys.version.split()[0]}"]


def _readJson(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


def stepTimes(workdir):
    """Rows (model, measured ms, predicted ms, replayed measured ms, replayed predicted ms) of the models whose
    measured or predicted step times were written."""
    rows = []
    for model, batch, shape in PROFILED:
        measured = _readJson(f"{workdir}/measured-{model}.json") or {}
        predicted = _readJson(f"{workdir}/predicted-{model}.json") or {}
        if measured or predicted:
            milliseconds = [None if figures.get(key) is None else figures[key] * 1e3 for figures, key in (
                (measured, "seconds"), (predicted, "predictedSeconds"), (measured, "replayedSeconds"),
                (predicted.get("replay", {}), "predictedSeconds"))]
            rows.append((f"{model} (batch {batch}{', ' + shape if shape else ''})", *milliseconds))
    return rows


def report(machine, results, times=()):
    """The Markdown report: the machine, a table of the steps, measured step times beside the simulated device's
    predictions, then each step's output (its tail when long)."""
    lines = [f"## GPU check ({time.strftime('%Y-%m-%d', time.gmtime())}) — `python -m benchmarks.gpu_check`", ""]
    lines += [f"{line}  " for line in machine] + ["", "| step | status | seconds |", "|---|---|---:|"]
    lines += [f"| {step.title} | {step.result['status']} | {step.result['seconds']:.0f} |" for step in results]
    if times:
        lines += ["", "| training step | measured ms | predicted ms (simulated device's model) | replayed as a CUDA "
                      "graph, measured ms | replayed, predicted ms |", "|---|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join([name, *("—" if value is None else f"{value:.2f}" for value in values)]) + " |"
                  for name, *values in times]
    for step in results:
        shown = step.result["output"].strip().splitlines()[-60:]
        command = " ".join("python" if part == sys.executable else part for part in step.argv)
        lines += ["", f"### {step.title}: {step.result['status']}", "", f"`{command}`", ""]
        lines += shown if step.markdown else ["```", *shown[-15:], "```"]
    return "\n".join(lines) + "\n"


def writeReport(path, text):
    """Replace the report at once (a temporary file renamed over it): a reader never sees half of one."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def runAll(allSteps, budget, out, env, machine, workdir, say=print):
    """Run the steps in order, rewriting the report at ``out`` after each; True when none failed."""
    results = []
    for step in allSteps:
        reason = missing(step)
        if reason is not None:
            step.result = {"status": reason, "seconds": 0.0, "output": ""}
        else:
            say(f"gpu_check: {step.title} ...")
            status, seconds, output = runStep(step.argv, step.share * budget, env)
            step.result = {"status": status, "seconds": seconds, "output": output}
        say(f"gpu_check: {step.title}: {step.result['status']} in {step.result['seconds']:.0f} s")
        results.append(step)
        writeReport(out, report(machine, results, stepTimes(workdir)))
    return all(step.result["status"] == "passed" or step.result["status"].startswith("skipped") for step in results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.md", help="the Markdown report to write (default: gpu_check.md)")
    parser.add_argument("--budget", type=float, default=480, help="seconds for all steps together (default: 480)")
    args = parser.parse_args(argv)

    os.environ["MINIDL_BACKEND"] = "cupy"  # the backend's probe: a device, a compiled kernel, cuBLAS
    try:
        import minidl.backend  # noqa: F401 - imported for its probe
    except BackendError as error:
        print(f"benchmarks.gpu_check: no usable GPU here, nothing checked: {error}", file=sys.stderr)
        return 2
    env = {**os.environ, "MINIDL_BACKEND": "cupy", "CI": "true"}  # CI: the suite's quick hypothesis profile
    env.pop("OPENBLAS_CORETYPE", None), env.pop("OPENBLAS_L2_SIZE", None)
    with tempfile.TemporaryDirectory() as workdir:
        passed = runAll(steps(workdir), args.budget, args.out, env, machineLines(), workdir,
                        say=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"gpu_check: report written to {args.out}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
