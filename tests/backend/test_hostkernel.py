"""The host path follows cupy.ElementwiseKernel's rules, reports compiler errors against the generated
source, caches what it builds, and MINIDL_CPU_KERNELS chooses it or the NumPy reference.

Kernels here are made inside the tests, so the registry-wide checks (which take minidl's own kernels only)
never see them; their expected values are known answers written in the tests."""

import json
import logging
import os
import re
import subprocess
import sys
import time

import numpy
import pytest

from minidl import BackendError
from minidl.backend import Elementwise, hostkernel, kernelsource


def kernel(inParams, outParams, operation, preamble="", reference=None):
    return Elementwise("test_kernel", inParams, outParams, operation, reference or _noReference, preamble=preamble)


def _noReference(*args):
    raise AssertionError("these tests run the host path only")


def test_placeholders_are_bound_to_the_arguments_dtypes():
    halve = kernel("T x", "T y", "y = x / (T)2")
    ints = numpy.array([5, -3], numpy.int32)
    numpy.testing.assert_array_equal(halve.callCompiled(ints, numpy.empty_like(ints)), [2, -1])  # C division
    floats = numpy.array([5, -3], numpy.float64)
    numpy.testing.assert_array_equal(halve.callCompiled(floats, numpy.empty_like(floats)), [2.5, -1.5])


def test_outputs_are_elements_by_reference_and_scalars_values():
    axpy = kernel("T x, float32 a", "T y", "y += a * x")
    x, y = numpy.array([1.0, 2.0, 3.0]), numpy.array([10.0, 20.0, 30.0])
    axpy.callCompiled(x, 0.5, y)
    axpy.callCompiled(x, 0.5, y)
    numpy.testing.assert_array_equal(y, [11.0, 22.0, 33.0])


def test_an_output_may_be_an_input_too():
    double = kernel("T x", "T y", "y = x * (T)2")
    x = numpy.array([1.0, -2.0])
    double.callCompiled(x, x)
    numpy.testing.assert_array_equal(x, [2.0, -4.0])


@pytest.mark.parametrize("shape", [(2, 3), (100_003,)])  # the larger runs on all OpenMP threads
def test_i_is_the_flat_index_over_every_element(shape):
    index = kernel("T x", "T y", "y = x + i")
    x = numpy.zeros(shape)
    numpy.testing.assert_array_equal(index.callCompiled(x, numpy.empty_like(x)).ravel(), numpy.arange(x.size))


def test_raw_arrays_are_indexed_by_the_operation():
    gather = kernel("raw T table, raw T grid, int32 cols", "T y",
                    "y = table[i % table.size()] + grid[{i / cols, i % cols}] * (T)grid.shape()[0]")
    table, grid = numpy.array([1.0, 2.0]), numpy.arange(6.0).reshape(2, 3)
    y = gather.callCompiled(table, grid, 3, numpy.empty(6))
    numpy.testing.assert_array_equal(y, [1 + 0, 2 + 2, 1 + 4, 2 + 6, 1 + 8, 2 + 10])


def test_the_preamble_comes_before_the_operation_with_the_typedefs():
    twice = kernel("T x", "T y", "y = twice(x)", preamble="__device__ T twice(T v) { return v + v; }")
    x = numpy.array([1.5, -4.0], numpy.float32)
    numpy.testing.assert_array_equal(twice.callCompiled(x, numpy.empty_like(x)), [3.0, -8.0])


def test_float16_computes_in_float_and_rounds_on_assignment_as_cupy_does():
    scale = kernel("T x", "T y", "y = x * (T)3 / (T)3")  # x * 3 overflows half, not float
    x = numpy.array([60000.0, -1.0], numpy.float16)
    numpy.testing.assert_array_equal(scale.callCompiled(x, numpy.empty_like(x)), [60000.0, -1.0])


def test_float16_without_the_compilers_half_type_says_what_to_do(tmp_path, monkeypatch):
    compiler = tmp_path / "cxx-without-float16"  # as g++ < 12 on x86-64
    compiler.write_text(f'#!/bin/sh\nexec {hostkernel.findCompiler()} -U__FLT16_MAX__ "$@"\n')
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path))
    copy = kernel("T x", "T y", "y = x")
    numpy.testing.assert_array_equal(copy.callCompiled(numpy.ones(2, numpy.float32), numpy.zeros(2, numpy.float32)), 1)
    advice = r"float16 kernels need a C\+\+ compiler with _Float16 \(g\+\+ >= 12, clang >= 15\): set CXX to one"
    with pytest.raises(BackendError, match=rf"error: #error \"{advice}, or MINIDL_CPU_KERNELS=numpy"):
        copy.callCompiled(numpy.ones(2, numpy.float16), numpy.zeros(2, numpy.float16))


def test_bad_arguments_raise_before_anything_changes():
    axpy = kernel("T x, float32 a", "T y", "y += a * x")
    y = numpy.ones(3)
    with pytest.raises(BackendError, match="mixed dtypes for type T"):
        axpy.callCompiled(numpy.ones(3, numpy.float32), 1.0, y)
    numpy.testing.assert_array_equal(y, 1.0)


@pytest.mark.parametrize("operation, complaint", [
    ("y = x + undefinedName", "undefinedName"),
    ("a = 1; y = x", "read-only"),      # scalars are const values
    ("x = 1; y = x", "read-only"),      # non-raw inputs are const references
])
def test_compiler_errors_show_the_generated_source_with_its_line_numbers(operation, complaint):
    broken = kernel("T x, float32 a", "T y", operation)
    with pytest.raises(BackendError, match="C\\+\\+ compiler rejected") as raised:
        broken.callCompiled(numpy.ones(2), 1.0, numpy.ones(2))
    message = str(raised.value)
    errorLine = re.search(r"\.cpp:(\d+):\d+: error: (.*)", message)
    assert errorLine and complaint in errorLine.group(2), message
    listed = re.search(rf"^\s*{errorLine.group(1)}  (.*)$", message, re.MULTILINE)
    assert listed and operation in listed.group(1), message


def test_a_parameter_named_i_or_a_loop_without_size_is_refused():
    with pytest.raises(BackendError, match="cannot name a parameter 'i'"):
        kernel("T i", "T y", "y = i")
    with pytest.raises(BackendError, match="loop's size is undecided"):
        kernel("raw T x", "raw T y", "y[i] = x[i]").callCompiled(numpy.ones(2), numpy.ones(2))


def test_libraries_are_cached_on_disk_by_source_and_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path))
    source = 'extern "C" int answer() { return 42; }\n'
    first = hostkernel.compileLibrary(source, "answer")
    assert first.parent == tmp_path / "hostkernels" and first.exists()

    def noCompiler(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(subprocess, "run", noCompiler)
    assert hostkernel.compileLibrary(source, "answer") == first
    monkeypatch.undo()
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path))
    assert hostkernel.compileLibrary(source.replace("42", "43"), "answer") != first
    monkeypatch.setattr(hostkernel, "_compilerIdentity", lambda compiler: "another compiler")
    assert hostkernel.compileLibrary(source, "answer") != first


def test_a_damaged_library_in_the_cache_is_built_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path))
    triple = kernel("T x", "T y", "y = x * (T)3")
    x = numpy.array([1.0, -2.0])
    cached = hostkernel.compileLibrary(kernelsource.hostSource(triple, {"T": x.dtype}, [1, 1]), "test_kernel")
    cached.write_bytes(cached.read_bytes()[:100])  # what a crash while writing it could leave
    numpy.testing.assert_array_equal(triple.callCompiled(x, numpy.empty_like(x)), [3.0, -6.0])


def test_a_cache_that_cannot_be_written_is_a_backend_error(tmp_path, monkeypatch):
    notADirectory = tmp_path / "file"
    notADirectory.write_text("")
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(notADirectory))
    with pytest.raises(BackendError, match="cannot build the kernel's library in .*MINIDL_CACHE_DIR"):
        kernel("T x", "T y", "y = x").callCompiled(numpy.ones(2), numpy.ones(2))


RACER = """
import os, sys, time, numpy
from minidl.backend import Elementwise
kernel = Elementwise("test_race", "T x", "T y", "y = x + (T)%d", lambda x, y: None)
open(sys.argv[1] + "." + str(os.getpid()), "w").close()  # ready
while not os.path.exists(sys.argv[1]):  # start compiling together
    time.sleep(0.001)
print(kernel.callCompiled(numpy.zeros(2), numpy.empty(2))[0])
"""


def test_processes_compiling_one_kernel_at_once_share_one_library(tmp_path):
    env = {**os.environ, "MINIDL_CACHE_DIR": str(tmp_path / "cache")}  # empty: all of them compile
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER % 7, str(go)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < len(racers) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        assert out.split() == ["7.0"]
    cached = sorted(path.name for path in (tmp_path / "cache" / "hostkernels").iterdir())
    # one library each for the prepared calls, the thread pool and the kernel, no temporary directory left
    assert [name.split("-")[0] for name in cached] == ["minidl_call", "minidl_threads", "test_race"], cached
    assert all(name.endswith(".so") for name in cached), cached


# A kernel whose elements write the thread that ran them, after 64 square roots (about 0.3 µs an element here)
THREADS_KERNEL = """
import json, threading, time, numpy
from minidl.backend import Elementwise, hostkernel
tid = Elementwise("test_threads", "T x", "T y, int64 thread",
                  "T s = x; for (int k = 0; k < 64; ++k) s = sqrt(s + (T)1); y = s; thread = syscall(SYS_gettid)",
                  lambda x, y, thread: None, preamble="#include <sys/syscall.h>\\n#include <unistd.h>")
"""

SPLIT = THREADS_KERNEL + """
x = numpy.arange((1 << 20) + 1, dtype=numpy.float32)  # 64 square roots an element: ranges of milliseconds
for pause in (0, 0, 0.01, 0):  # back to back (the threads spinning), then after they went to sleep
    time.sleep(pause)
    y, threads = tid.callCompiled(x, numpy.empty_like(x), numpy.zeros(x.size, numpy.int64))
    expected = x.astype(numpy.float64)
    for _ in range(64):
        expected = numpy.sqrt(expected + 1)
    print(json.dumps({"caller": bool(threads[0] == threading.get_native_id()), "threads": len(set(threads.tolist())),
                      "changes": (numpy.flatnonzero(numpy.diff(threads)) + 1).tolist(),
                      "error": float(abs(y - expected).max())}))
"""


def _splits(threads, policy, tmp_path):
    env = {**os.environ, "MINIDL_CACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": policy}
    result = subprocess.run([sys.executable, "-c", SPLIT], env=env, text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _staticRanges(size, threads):
    """OpenMP's schedule(static): one contiguous range per thread, the first size % threads one longer."""
    share, longer = divmod(size, threads)
    return [index * share + min(index, longer) for index in range(threads + 1)]


@pytest.mark.parametrize("policy", ["", "passive"])
def test_a_parallel_loop_is_split_as_openmps_static_schedule_on_minidls_threads(policy, tmp_path):
    # 2^20 + 1 values on two threads: the caller's thread runs the first range, one longer; the other thread,
    # spinning or woken, claims the second long before the caller is done with its milliseconds of square roots
    for call in _splits(2, policy, tmp_path):
        assert call == {"caller": True, "threads": 2, "changes": [_staticRanges((1 << 20) + 1, 2)[1]],
                        "error": pytest.approx(0, abs=1e-6)}


def test_ranges_no_thread_has_reached_go_to_the_threads_that_have_finished_theirs(tmp_path):
    # 16 threads on this machine's cores: most wake late, and those that finished first (the caller's among them)
    # claim the ranges still unclaimed; each range still runs whole on one thread, the results as on one thread
    boundaries = _staticRanges((1 << 20) + 1, 16)
    for call in _splits(16, "", tmp_path):
        assert call["caller"] and 1 <= call["threads"] <= 16
        assert set(call["changes"]) <= set(boundaries[1:-1]), call["changes"]
        assert call["error"] == pytest.approx(0, abs=1e-6)


THRESHOLD = THREADS_KERNEL + """
counts = {}
for size in (hostkernel.PARALLEL_FROM["spinning"] - 1, hostkernel.PARALLEL_FROM["spinning"]):  # grain 1: values
    x = numpy.ones(size, numpy.float32)
    counts[size] = [len(set(tid.callCompiled(x, numpy.empty_like(x), numpy.zeros(size, numpy.int64))[1].tolist()))
                    for _ in range(20)]
print(json.dumps(counts))
"""


def test_a_loop_is_shared_from_the_pools_threshold_of_values():
    assert hostkernel.parallelFrom(hostkernel.SPIN_MICROS) == hostkernel.PARALLEL_FROM["spinning"] == 1 << 14
    assert hostkernel.parallelFrom(0) == hostkernel.PARALLEL_FROM["sleeping"] == 1 << 18
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": ""}
    result = subprocess.run([sys.executable, "-c", THRESHOLD], env=env, text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    below, at = json.loads(result.stdout).values()
    assert below == [1] * 20  # one value short: always the caller's thread alone
    assert max(at) == 2 and set(at) <= {1, 2}  # shared (a call whose worker woke late may still run alone)


IDLE = """
import resource, time, numpy
try:
    import torch  # brings an OpenMP runtime of its own, initialized before minidl's first kernel
except ImportError:
    pass
from minidl.backend import Elementwise
kernel = Elementwise("test_idle", "T x", "T y", "y = x + (T)1", lambda x, y: None)
x = numpy.zeros(1 << 20)
for _ in range(3):
    kernel.callCompiled(x, numpy.empty_like(x))  # parallel: 2^20 values
usage = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.5)
after = resource.getrusage(resource.RUSAGE_SELF)
print(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
"""


def test_idle_kernel_threads_sleep_whatever_the_process_loaded_or_set(tmp_path):
    # OMP_WAIT_POLICY=active makes an OpenMP runtime's idle threads spin for good: minidl's threads are its own
    env = {**os.environ, "MINIDL_CACHE_DIR": str(tmp_path), "OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", IDLE], env=env, text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 0.05  # CPU seconds over half a second of the main thread's sleep


def test_idle_threads_spin_half_a_millisecond_unless_omp_wait_policy_is_passive():
    assert hostkernel.spinMicros("passive") == hostkernel.spinMicros(" PASSIVE ") == 0
    assert hostkernel.spinMicros("") == hostkernel.spinMicros("active") == hostkernel.SPIN_MICROS == 500


def test_omp_num_threads_sets_the_threads_as_openmp_reads_it():
    assert hostkernel.threadCount("3") == 3
    assert hostkernel.threadCount("2,1") == 2  # OpenMP's nested list: the outer level
    assert hostkernel.threadCount("") == len(os.sched_getaffinity(0))
    with pytest.raises(BackendError, match="OMP_NUM_THREADS must be a number of threads >= 1, got '0'"):
        hostkernel.threadCount("0")


def test_minidl_cpu_kernels_chooses_the_path(caplog):
    assert hostkernel.chooseCpuKernels("numpy", "/usr/bin/c++") == "numpy"
    assert hostkernel.chooseCpuKernels("compiled", "/usr/bin/c++") == "compiled"
    assert hostkernel.chooseCpuKernels("", "/usr/bin/c++") == "preferred"
    with pytest.raises(BackendError, match="'numpy' or 'compiled', got 'fast'"):
        hostkernel.chooseCpuKernels("fast", "/usr/bin/c++")
    with pytest.raises(BackendError, match="MINIDL_CPU_KERNELS=compiled, but no C\\+\\+ compiler"):
        hostkernel.chooseCpuKernels("compiled", None)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        assert hostkernel.chooseCpuKernels("", None) == "numpy"
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "NumPy references" in caplog.records[0].getMessage()


def test_without_a_compiler_one_warning_and_numpy_for_the_process(monkeypatch, caplog):
    monkeypatch.delenv("MINIDL_CPU_KERNELS", raising=False)
    monkeypatch.setattr(hostkernel, "findCompiler", lambda: None)
    hostkernel.cpuKernels.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="minidl"):
            assert [hostkernel.cpuKernels() for _ in range(3)] == ["numpy"] * 3
        assert len(caplog.records) == 1
    finally:
        hostkernel.cpuKernels.cache_clear()


@pytest.mark.parametrize("path, added", [("compiled", 2.0), ("numpy", 1.0)])
def test_calls_on_numpy_arrays_take_the_chosen_path(monkeypatch, path, added):
    def addOne(x, y):
        numpy.add(x, 1.0, out=y)

    differing = kernel("T x", "T y", "y = x + (T)2", reference=addOne)  # the paths disagree on purpose
    monkeypatch.setattr(hostkernel, "cpuKernels", lambda: path)
    numpy.testing.assert_array_equal(differing(numpy.zeros(3), numpy.empty(3)), added)
    assert differing.callNumpy(numpy.zeros(1), numpy.empty(1))[0] == 1.0
    assert differing.callCompiled(numpy.zeros(1), numpy.empty(1))[0] == 2.0


@pytest.mark.parametrize("cpuPath, added", [("compiled", 2.0), ("numpy", 1.0)])
def test_by_default_each_kernel_takes_its_own_cpu_path(monkeypatch, cpuPath, added):
    def addOne(x, y):
        numpy.add(x, 1.0, out=y)

    differing = Elementwise(f"test_preferred_{cpuPath}", "T x", "T y", "y = x + (T)2", addOne, cpuPath=cpuPath)
    monkeypatch.setattr(hostkernel, "cpuKernels", lambda: "preferred")
    numpy.testing.assert_array_equal(differing(numpy.zeros(3), numpy.empty(3)), added)
    with pytest.raises(BackendError, match="cpuPath must be one of"):
        Elementwise("test_bad_path", "T x", "T y", "y = x", addOne, cpuPath="gpu")


COMPILE_TWO = """
import numpy
from minidl.backend import Elementwise
for scale in (2, 3):
    kernel = Elementwise("test_kernel", "T x", "T y", "y = x * %d" % scale, None)
    print(kernel.callCompiled(numpy.ones(2), numpy.empty(2))[0])
"""


def test_the_first_compilation_of_a_process_says_so_once_and_a_cached_run_says_nothing(tmp_path):
    env = {**os.environ, "MINIDL_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", COMPILE_TWO], env=env, text=True, capture_output=True, timeout=120)
    assert first.stdout.split() == ["2.0", "3.0"], first.stderr
    assert first.stderr.count("compiling CPU kernels, first run only") == 1, first.stderr  # two kernels, one line
    again = subprocess.run([sys.executable, "-c", COMPILE_TWO], env=env, text=True, capture_output=True, timeout=120)
    assert again.stdout.split() == ["2.0", "3.0"] and "compiling" not in again.stderr, again.stderr


def test_an_arrays_address_is_read_where_numpy_keeps_it():
    """``hostkernel.address`` against NumPy's own ``.ctypes.data``: views, offsets, read-only arrays, every dtype;
    a subclass (whose layout NumPy does not promise) and None take the slow way."""
    base = numpy.arange(60, dtype=numpy.float64).reshape(3, 4, 5)
    readOnly = numpy.zeros(7, numpy.int8)
    readOnly.flags.writeable = False
    arrays = [base, base[1], base[:, 1:, 2:], base.T, base.astype(numpy.float32)[2, 3:], readOnly,
              numpy.zeros((), numpy.complex64), numpy.empty(0, numpy.float16)]
    for array in arrays:
        assert hostkernel.address(array) == array.ctypes.data
    masked = numpy.ma.array([1.0, 2.0])
    assert hostkernel.address(masked) == masked.ctypes.data
    assert hostkernel.address(None) is None
