"""The simulated device's stream capture and CUDA graphs (minidl.backend.simulated.graphs) against what CUDA and CuPy
do: a capture runs nothing, a launch runs the captured work again on the memory it was captured on, what a capture
cannot hold raises, and a graph keeps no memory alive. These use the simulated namespace directly and run in every
suite run."""

import ctypes
import os
import subprocess
import sys

import numpy
import pytest

from minidl.backend import simulated
from minidl.backend.simulated import cublas, trace

cupy = simulated.cupy


def device(values, dtype=numpy.float32):
    return cupy.array(numpy.asarray(values, dtype=dtype))


def capture(block, pool=None):
    """Capture ``block()`` on a stream of its own (allocating from ``pool``): (the graph, what block returned)."""
    stream = cupy.cuda.Stream(non_blocking=True)
    with cupy.cuda.using_allocator(None if pool is None else pool.malloc), stream:
        stream.begin_capture()
        result = block()
        return stream.end_capture(), result


def test_a_capture_runs_nothing_and_each_launch_runs_the_work_again():
    a, b = device([0, 1, 2]), device([1, 1, 1])
    pool = cupy.cuda.MemoryPool()

    def block():
        c = a * 2 + b  # two launches: a * 2 into a temporary, then + b
        cupy.add(b, c, out=b)
        return c

    graph, c = capture(block, pool)
    assert b.get().tolist() == [1, 1, 1]  # nothing ran
    assert numpy.isnan(c.get()).all()  # what the capture allocated holds no value yet (0xFF bytes)
    with trace.recording() as recorded:
        graph.launch()
    assert (c.get().tolist(), b.get().tolist()) == ([1, 3, 5], [2, 4, 6])
    assert [event.nodes for event in recorded.graphLaunches] == [3]
    assert len(recorded.launches) == 3 and all(launch.graph for launch in recorded.launches)
    assert recorded.summary()["hostLaunches"] == 0
    a[...] = device([10, 10, 10])  # the graph reads its arrays' memory as it is at each launch
    graph.launch()
    assert (c.get().tolist(), b.get().tolist()) == ([22, 24, 26], [24, 28, 32])


def test_kernels_and_products_are_captured_with_the_host_scalars_of_their_call():
    kernel = cupy.ElementwiseKernel("T x, T scale", "T y", "y = x * scale", "test_scale")
    x, y = device([1, 2]), device([0, 0])
    left, right, out = device([[1, 2], [3, 4]]), device([[1, 0], [0, 1]]), device([[0, 0], [0, 0]])
    alpha, beta = numpy.array(2, numpy.float32), numpy.array(0, numpy.float32)

    def block():
        kernel(x, numpy.float32(3), y)
        cublas.gemmStridedBatchedEx(cublas.HANDLE, 0, 0, 2, 2, 2, alpha.ctypes.data, right.data.ptr, 0, 2, 4,
                                    left.data.ptr, 0, 2, 4, beta.ctypes.data, out.data.ptr, 0, 2, 4, 1,
                                    cublas.CUBLAS_COMPUTE_32F, cublas.CUBLAS_GEMM_DEFAULT)

    graph, _ = capture(block)
    alpha[...] = 100  # cuBLAS read alpha when it was called: the graph keeps 2
    graph.launch()
    assert y.get().tolist() == [3, 6] and out.get().tolist() == [[2, 4], [6, 8]]


@pytest.mark.parametrize("refused, what", [
    (lambda a: a.get(), "synchronous API calls"), (lambda a: float(a[0]), "synchronous API calls"),
    (lambda a: cupy.cuda.get_current_stream().synchronize(), "synchronous API calls"),
    (lambda a: cupy.asarray(numpy.ones(3, numpy.float32)), "H2D transfers"),
    (lambda a: a.set(numpy.ones(3, numpy.float32)), "H2D transfers")])
def test_a_sync_or_an_upload_inside_a_capture_raises_and_invalidates_it(refused, what):
    a = device([1, 2, 3])
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match=f"the current stream is capturing, so {what}"):
            refused(a)
        with pytest.raises(RuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            stream.end_capture()
    assert not stream.is_capturing() and a.get().tolist() == [1, 2, 3]


def test_the_null_stream_and_work_from_another_stream_are_refused():
    with pytest.raises(RuntimeError, match="cannot capture on the default"):
        cupy.cuda.Stream(null=True).begin_capture()
    a, stream = device([1, 2]), cupy.cuda.Stream(non_blocking=True)
    stream.begin_capture()
    try:
        with pytest.raises(RuntimeError, match="another stream than the capturing one"):
            a + 1  # queued from the current stream, which is not the capturing one
    finally:
        with pytest.raises(RuntimeError, match="Invalidated"):
            stream.end_capture()


def test_a_graph_keeps_no_memory_alive_but_a_pool_does():
    a = device([1, 2, 3])
    held = {"b": device([0, 0, 0])}

    def block():
        held["b"][...] = a * 2
        return None

    graph, _ = capture(block)
    del held["b"]  # the graph's only reference: freed, as CuPy's pool would hand it to the next allocation
    with pytest.raises(RuntimeError, match="freed since its capture"):
        graph.launch()

    pool = cupy.cuda.MemoryPool()
    graph, kept = capture(lambda: [a * 3], pool)
    out = kept[0]
    del kept
    graph.launch()  # the temporary lives in the pool, which the caller keeps with the graph
    assert out.get().tolist() == [3, 6, 9] and pool.used_bytes() >= 12


def test_memory_put_back_at_the_capture_is_the_memory_it_found():
    """The simulator computes captured calls to go on; the end of the capture puts back every byte it changed."""
    a = device([1.5, -2.0, 3.25])
    before = bytes((ctypes.c_char * 12).from_address(a.data.ptr))

    def block():
        a[...] = a * a
        a.fill(7)

    capture(block)
    assert bytes((ctypes.c_char * 12).from_address(a.data.ptr)) == before


# A buffer held only by a reference cycle lives until the cyclic garbage collector runs, and any allocation may run
# it. Ending a capture writes back every live buffer it found: were a buffer's liveness checked and its raw address
# written after, a collection between the two freed it first and the write landed in freed memory (a suite run
# aborted in malloc once). Here each buffer is 1 MiB and malloc maps such buffers alone (MALLOC_MMAP_THRESHOLD_, with
# minidl's kept host memory off: minidl.backend.hostmemory), so a write after the free faults at once; the
# collector's threshold is swept so that it runs at each point of the restore in turn.
CYCLE_GARBAGE_DURING_RESTORE = """
import gc, numpy
from minidl.backend import simulated
cupy = simulated.cupy

class Cycle:
    def __init__(self, array):
        self.array, self.me = array, self

for threshold in range(1, 40):
    gc.disable()
    gc.collect()
    holder = [Cycle(cupy.ones(1 << 18, numpy.float32))]
    gc.collect(0)  # the cycle, in the second generation now
    del holder  # garbage, not collected yet
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        kept = cupy.ones(1 << 18, numpy.float32) * 2  # a buffer of the capture's own, poisoned at its end
        gc.collect(0)
        gc.set_threshold(threshold, 0, 0)
        gc.enable()
        stream.end_capture()
    gc.set_threshold(700, 10, 10)
    assert numpy.isnan(kept.get()).all()
print("every restore wrote live memory only")
"""


def test_ending_a_capture_writes_no_buffer_the_garbage_collector_frees_meanwhile():
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MINIDL_HOST_MEMORY": "release"}
    run = subprocess.run([sys.executable, "-c", CYCLE_GARBAGE_DURING_RESTORE], capture_output=True, text=True,
                         env=environment, timeout=120)
    assert run.returncode == 0 and "live memory only" in run.stdout, (run.returncode, run.stderr[-2000:])
