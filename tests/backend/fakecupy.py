"""A stand-in for CuPy's device side, failing the way a real machine fails when a piece of the CUDA stack is
missing. ``fakeCupy(failure)`` gives a module-like object; a folder holding ``cupy/__init__.py`` with
``from tests.backend.fakecupy import *`` makes ``import cupy`` in a subprocess load the one FAKE_CUPY_FAILURE
names. Each call of getDeviceCount appends a line to FAKE_CUPY_LOG when set (to count probes).

Failures, with the exceptions CuPy 14 raises for them: "driver" (no driver or device), "nodevice" (a count of
0), "nvrtc" (libnvrtc absent), "headers" (a compile error), "cublas" (libcublas absent), "wrongvalues"
(a kernel that runs but computes garbage), "" (everything works).
"""

import os
import types

import numpy


class CUDARuntimeError(RuntimeError):
    pass


class DynamicLibNotFoundError(RuntimeError):
    pass


class CompileException(Exception):
    pass


class FakeArray:
    """Device memory, held on the host: get() copies it back as CuPy's does."""

    def __init__(self, values, failure):
        self.values, self.failure = numpy.asarray(values), failure

    def get(self):
        return self.values.copy()

    def __matmul__(self, other):
        if self.failure == "cublas":
            raise ImportError("libcublas.so.12: cannot open shared object file: No such file or directory")
        return FakeArray(self.values @ other.values, self.failure)


def fakeCupy(failure):
    """A module-like stand-in for cupy whose device side fails as ``failure`` says (see the docstring)."""

    def getDeviceCount():
        if os.environ.get("FAKE_CUPY_LOG"):
            with open(os.environ["FAKE_CUPY_LOG"], "a") as log:
                log.write("getDeviceCount\n")
        if failure == "driver":
            raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
        return 0 if failure == "nodevice" else 1

    class ElementwiseKernel:
        """Runs the probe's one operation, ``y = x + 1``, as the device would."""

        def __init__(self, inParams, outParams, operation, name):
            assert operation == "y = x + 1", operation

        def __call__(self, x):
            if failure == "nvrtc":
                raise DynamicLibNotFoundError("Failure finding \"libnvrtc.so\": No such file")
            if failure == "headers":
                raise CompileException("cuda_fp16.h(10): catastrophic error: cannot open source file")
            return FakeArray(x.values + (7 if failure == "wrongvalues" else 1), failure)

    runtime = types.SimpleNamespace(getDeviceCount=getDeviceCount, runtimeGetVersion=lambda: 12090)
    return types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=runtime),
        ElementwiseKernel=ElementwiseKernel,
        ndarray=FakeArray,
        zeros=lambda shape, dtype: FakeArray(numpy.zeros(shape, dtype), failure),
        ones=lambda shape, dtype: FakeArray(numpy.ones(shape, dtype), failure),
    )


if os.environ.get("FAKE_CUPY_FAILURE") is not None:  # imported as cupy in a subprocess
    globals().update(vars(fakeCupy(os.environ["FAKE_CUPY_FAILURE"])))
