"""Data-parallel cost on the CPU: the gradient reduction per step against gradient bytes, and training
throughput from 1 to 2 ranks (scaling efficiency).

    python -m benchmarks.allreduce          # starts the mpiexec jobs itself and prints the tables

Each rank runs with one BLAS thread, so N ranks use N cores.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy

from benchmarks.timing import machine, medianSeconds
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.distributed import NodeInfo
from minidl.nn import Activation, Linear, Sequential, relu
from minidl.optim import AdaGrad

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
BATCH, STEPS = 128, 60


def reductionTimes(info, rounds=5):
    """Per size, seconds per sumTensor (a non-blocking MPI Iallreduce polled against its deadline) and per
    blocking MPI Allreduce of the same buffer (no deadline): rounds of each in turn, the best round of each,
    so that load on the machine falls on both alike."""
    withDeadline, blocking = {}, {}
    for size in SIZES:
        buffer = numpy.ones(size, numpy.float32)
        pairs = [(medianSeconds(lambda: info.sumTensor(buffer), repeats=10),  # noqa: B023 - called at once
                  medianSeconds(lambda: info.comm.Allreduce(info.MPI.IN_PLACE, buffer, op=info.MPI.SUM),  # noqa: B023
                                repeats=10))
                 for _ in range(rounds)]
        withDeadline[size], blocking[size] = min(pair[0] for pair in pairs), min(pair[1] for pair in pairs)
    return withDeadline, blocking


def trainingThroughput(info):
    """Samples per second of a 64-256-256-10 MLP, AdaGrad, global state, batch BATCH per rank."""
    backend.seed(0)
    net = Sequential().extend([Linear(64, 256), Activation(relu), Linear(256, 256), Activation(relu), Linear(256, 10)])
    optimizer = AdaGrad(learnRate=0.01, nodeinfo=info if info.gridsize > 1 else None)
    optimizer.setupOn(net, useGlobalState=True)
    rng, cost = numpy.random.default_rng(info.index), CrossEntropy()
    x = backend.toDevice(rng.standard_normal((BATCH, 64)), dtype=numpy.float32)
    y = backend.toDevice(rng.integers(0, 10, BATCH))

    def step():
        _, grad = cost(net(x), y)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()

    for _ in range(5):
        step()
    info.barrier()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    info.barrier()
    return BATCH * info.gridsize * STEPS / (time.perf_counter() - start)


def worker():
    info = NodeInfo()
    result = {"ranks": info.gridsize, "throughput": trainingThroughput(info)}
    if info.gridsize > 1:
        result["reduce"], result["blocking"] = reductionTimes(info)
    if info.isRoot:
        print(json.dumps(result))


def runJob(ranks):
    mpiexec = shutil.which("mpiexec", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mpiexec")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    output = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-m", "benchmarks.allreduce", "--worker"],
                            env=environment, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    one, two = runJob(1), runJob(2)
    print(f"# {machine()}; MPI on the CPU, one BLAS thread per rank\n")
    print("Gradient reduction (sumTensor: in-place MPI Iallreduce of float32 with a deadline), 2 ranks, against\n"
          "a blocking MPI Allreduce without one\n")
    print("| gradient bytes | ms per reduction | GB/s (bytes / time) | blocking Allreduce ms | deadline's cost |")
    print("|---:|---:|---:|---:|---:|")
    for size, seconds in two["reduce"].items():
        blocking = two["blocking"][size]
        print(f"| {4 * int(size):,} | {seconds * 1e3:.3f} | {4 * int(size) / seconds / 1e9:.2f} | "
              f"{blocking * 1e3:.3f} | {seconds / blocking:.2f}x |")
    efficiency = two["throughput"] / (2 * one["throughput"])
    print(f"\nTraining throughput, 64-256-256-10 MLP, AdaGrad, batch {BATCH} per rank\n")
    print("| ranks | samples/s | scaling efficiency |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one['throughput']:,.0f} | 100% |")
    print(f"| 2 | {two['throughput']:,.0f} | {efficiency:.0%} |")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
