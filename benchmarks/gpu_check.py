"""The GPU check: one command that proves minidl's GPU path on a machine with an NVIDIA GPU and CuPy, and
writes one Markdown report to paste into benchmarks/README.md.

    python -m benchmarks.gpu_check [--out gpu_check.md] [--budget 480]

With no usable GPU it stops at once, saying why (the backend probe's reason). Otherwise it runs, on the CuPy
backend (MINIDL_BACKEND=cupy), without network, each step in a subprocess with its share of --budget seconds:
the whole test suite; ``python -m minidl train --device gpu`` with the MLP and with the CNN; the MLP on 2 MPI
ranks sharing one GPU; and the benchmarks (optimizer steps against the copy bandwidth measured in the same
run, conv and training steps, each against PyTorch where it imports). Every step is a command the suite also
runs on the CPU; the report gives each step's status, time and output.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from minidl.errors import BackendError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def steps(workdir):
    """(title, argv, share of the budget) per step; argv[0] is the Python running this check."""
    python = sys.executable
    mpiexec = shutil.which("mpiexec", path=str(pathlib.Path(python).parent)) or shutil.which("mpiexec") or "mpiexec"
    train = [python, "-m", "minidl", "train", "--device", "gpu"]
    return [
        ("test suite on the CuPy backend", [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], 0.40),
        ("train the MLP on the GPU", [*train, "--epochs", "5", "--out", f"{workdir}/mlp"], 0.06),
        ("train the CNN on the GPU", [*train, "--model", "cnn", "--batch-size", "32", "--lr", "0.05", "--epochs", "5",
                                      "--out", f"{workdir}/cnn"], 0.08),
        ("train the MLP on 2 MPI ranks, one GPU", [mpiexec, "-n", "2", *train, "--epochs", "3",
                                                   "--out", f"{workdir}/mpi"], 0.08),
        ("optimizer steps", [python, "-m", "benchmarks.optimizer_step"], 0.14),
        ("conv forward and backward", [python, "-m", "benchmarks.conv", "--repeats", "10"], 0.10),
        ("training steps", [python, "-m", "benchmarks.train_step", "--repeats", "7"], 0.14),
    ]


def runStep(argv, seconds, env):
    """(status, seconds taken, output) of one step, stopped after ``seconds``."""
    start = time.perf_counter()
    try:
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds)
        status = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        output = result.stdout + result.stderr
    except subprocess.TimeoutExpired as expired:
        status = f"TIMED OUT after {seconds:.0f} s"
        output = "".join(part.decode() if isinstance(part, bytes) else part or ""
                         for part in (expired.stdout, expired.stderr))
    return status, time.perf_counter() - start, output


def machineLines():
    """What the numbers were taken on: the GPU, its driver, CuPy, CUDA and NVRTC versions."""
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(0)
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    nvrtc = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
    return [f"GPU: {properties['name'].decode()} ({cupy.cuda.runtime.getDeviceCount()} visible), compute capability "
            f"{properties['major']}.{properties['minor']}, driver {cupy.cuda.runtime.driverGetVersion()}",
            f"CuPy {cupy.__version__}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, NVRTC {nvrtc}; "
            f"Python {sys.version.split()[0]}"]


def report(machine, results):
    """The Markdown report: the machine, a table of the steps, then each step's output (its tail when long)."""
    lines = [f"## GPU check ({time.strftime('%Y-%m-%d', time.gmtime())}) — `python -m benchmarks.gpu_check`", ""]
    lines += [f"{line}  " for line in machine] + ["", "| step | status | seconds |", "|---|---|---:|"]
    lines += [f"| {title} | {status} | {seconds:.0f} |" for title, _, status, seconds, _ in results]
    for title, argv, status, _, output in results:
        shown = output.strip().splitlines()[-60:]
        command = " ".join("python" if part == sys.executable else part for part in argv)
        lines += ["", f"### {title}: {status}", "", f"`{command}`", ""]
        lines += shown if title in BENCHMARK_TITLES else ["```", *shown[-15:], "```"]
    return "\n".join(lines) + "\n"


BENCHMARK_TITLES = {"optimizer steps", "conv forward and backward", "training steps"}  # their output is Markdown


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
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for title, command, share in steps(workdir):
            print(f"gpu_check: {title} ...", file=sys.stderr, flush=True)
            status, seconds, output = runStep(command, share * args.budget, env)
            print(f"gpu_check: {title}: {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
            results.append((title, command, status, seconds, output))
    pathlib.Path(args.out).write_text(report(machineLines(), results))
    print(f"gpu_check: report written to {args.out}", file=sys.stderr)
    return 0 if all(status == "passed" for _, _, status, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
