"""Inference of an exported network: minidl's eval-mode forward pass against ONNX Runtime (CPU provider) running
the file ``minidl.onnx.export`` wrote for it, same weights, same batch, in the same run; minidl both ordinarily and
replayed (``minidl.nn.CapturedForward``, as ``Calculator`` runs it). Each row also checks that both give the same
scores (within 1e-5 of the largest) and that the replay gives the ordinary pass's bits.

    python -m benchmarks.onnx_inference [--repeats 20] [--threads N]

``--threads N`` gives ONNX Runtime N threads; give NumPy's BLAS and minidl's compiled kernels the same
(OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N; the run line says what each got) for a fair row: on a loaded machine,
threads that spin waiting for each other dominate the times, and a kernel split over two threads waits for the
second to wake.
"""

import argparse
import os
import tempfile
from functools import partial

import numpy

from benchmarks.timing import machine, medianSeconds
from minidl import backend
from minidl.backend.hostkernel import threadCount
from minidl.models import MODELS
from minidl.nn import CapturedForward
from minidl.onnx import export

NETWORKS = [("mlp", (64,), 10), ("cnn", (1, 8, 8), 10)]  # digits-sized, as minidl train builds them
BATCHES = (1, 256)


def rows(repeats, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads

    for name, sampleShape, classes in NETWORKS:
        net = MODELS[name].build(sampleShape, classes).evalMode()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{name}.onnx")
            export(net, path, backend.xp.zeros((1, *sampleShape), dtype=numpy.float32))
            session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for batch in BATCHES:
            host = backend.generator().standard_normal((batch, *sampleShape)).astype(numpy.float32)
            data = backend.toDevice(host)
            ours = backend.toHost(net(data))
            theirs = session.run(None, {"input": host})[0]
            numpy.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5 * float(numpy.abs(ours).max()))
            forward = CapturedForward(net)
            for _ in range(2):  # the second call of a shape records it
                forward(data)
            assert backend.toHost(forward(data)).tobytes() == ours.tobytes(), "a replay changed the scores"
            minidlSeconds = medianSeconds(partial(net, data), repeats=repeats)
            replayedSeconds = medianSeconds(partial(forward, data), repeats=repeats)
            ortSeconds = medianSeconds(partial(session.run, None, {"input": host}), repeats=repeats)
            yield name, batch, minidlSeconds, replayedSeconds, ortSeconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime's threads (default 0: its choice)")
    args = parser.parse_args()
    backend.seed(0)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    kernels = threadCount(os.environ.get("OMP_NUM_THREADS", ""))
    print(f"Run: {machine()}; ONNX Runtime {__import__('onnxruntime').__version__} (CPU provider, "
          f"{args.threads or 'default'} threads); OPENBLAS_NUM_THREADS={blas}; minidl's kernels {kernels} threads\n")
    print("| network | batch | minidl ms | minidl replayed ms | ONNX Runtime ms | minidl / ONNX Runtime | "
          "replayed / ONNX Runtime |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, batch, minidlSeconds, replayedSeconds, ortSeconds in rows(args.repeats, args.threads):
        print(f"| {name} | {batch} | {minidlSeconds * 1e3:.3f} | {replayedSeconds * 1e3:.3f} | "
              f"{ortSeconds * 1e3:.3f} | {minidlSeconds / ortSeconds:.2f}x | {replayedSeconds / ortSeconds:.2f}x |")


if __name__ == "__main__":
    main()
