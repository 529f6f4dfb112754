"""Checks an Elementwise kernel on every path against a float64 oracle.

The CPU path (the NumPy reference, whatever MINIDL_CPU_KERNELS says) is compared with the oracle, and every
other path of the same kernel with the CPU path, at the same tolerances: the kernel's CUDA text compiled for
the host, always (so CI runs every CUDA text without a GPU), and CuPy on a GPU.
"""

import importlib
import pkgutil

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl
from minidl import backend
from minidl.backend.elementwise import registry

TOLERANCES = {  # dtype -> (rtol, atol)
    numpy.dtype(numpy.float16): (2e-2, 2e-3),
    numpy.dtype(numpy.float32): (2e-5, 2e-6),
    numpy.dtype(numpy.float64): (1e-11, 1e-13),
}


def _runOnGpu(kernel, args):
    deviceArgs = [backend.toDevice(arg) if isinstance(arg, numpy.ndarray) else arg for arg in args]
    kernel(*deviceArgs)
    return [backend.toHost(arg) if isinstance(arg, backend.xp.ndarray) else arg for arg in deviceArgs]


def _runCompiled(kernel, args):
    kernel.callCompiled(*args)
    return args


OTHER_PATHS = {"host": _runCompiled, **({"cupy": _runOnGpu} if backend.isGpu else {})}


def otherPathParams():
    """pytest params for the non-NumPy paths of a kernel."""
    return list(OTHER_PATHS)


def packageKernels():
    """Every Elementwise kernel minidl defines, after importing all its modules (but ``__main__``, a command,
    and those needing an optional dependency that is not installed: their kernels cannot run here)."""
    for module in pkgutil.walk_packages(minidl.__path__, "minidl."):
        if module.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as error:
            if (error.name or "minidl").split(".")[0] == "minidl":
                raise
    return [kernel for kernel in registry if kernel.reference.__module__.startswith("minidl.")]


def outputsOf(kernel, args):
    return [arg for param, arg in zip(kernel.params, args) if param.isOutput]


def runCpu(kernel, args):
    """Run the NumPy reference on copies of args; return the outputs."""
    args = [arg.copy() if isinstance(arg, numpy.ndarray) else arg for arg in args]
    kernel.callNumpy(*args)
    return outputsOf(kernel, args)


def runPath(path, kernel, args):
    args = [arg.copy() if isinstance(arg, numpy.ndarray) else arg for arg in args]
    return outputsOf(kernel, OTHER_PATHS[path](kernel, args))


def assertClose(actual, expected, dtype, what):
    """Every output close to its expected array, of the same shape (no broadcasting), none left unchecked."""
    rtol, atol = TOLERANCES[numpy.dtype(dtype)]
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, {len(expected)} expected"
    for index, (a, e) in enumerate(zip(actual, expected)):
        shapes = numpy.shape(a), numpy.shape(e)
        assert shapes[0] == shapes[1], f"{what}: output {index} has shape {shapes[0]}, expected {shapes[1]}"
        numpy.testing.assert_allclose(
            numpy.asarray(a, dtype=numpy.float64), e, rtol=rtol, atol=atol * max(1.0, float(numpy.abs(e).max())),
            err_msg=f"{what}: output {index}",
        )


def checkAgainstOracle(kernel, args, oracle, dtype):
    """CPU path against ``oracle(*float64 copies of args)``, which returns the expected outputs."""
    wide = [arg.astype(numpy.float64) if isinstance(arg, numpy.ndarray) and arg.dtype.kind == "f" else arg
            for arg in args]
    expected = oracle(*wide)
    assertClose(runCpu(kernel, args), expected, dtype, f"{kernel.name} CPU path against the float64 oracle")


def checkAgainstCpu(path, kernel, args, dtype):
    assertClose(runPath(path, kernel, args), runCpu(kernel, args), dtype, f"{kernel.name} {path} path against CPU")


def f32(value):
    """Kernels take hyperparameters as float32 scalars; oracles use the same rounded values."""
    return float(numpy.float32(value))


FLOAT_DTYPES = st.sampled_from([numpy.float32, numpy.float64])
ALL_FLOAT_DTYPES = st.sampled_from([numpy.float16, numpy.float32, numpy.float64])


def arrays(dtype, shape, low=-4.0, high=4.0):
    """Finite values in [low, high] of the given dtype and shape."""
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, width=numpy.dtype(dtype).itemsize * 8))


def shapes(maxDims=3, maxSide=8):
    return hnp.array_shapes(min_dims=1, max_dims=maxDims, min_side=1, max_side=maxSide)


def kernelCaseTests(cases):
    """The two property tests of a table ``{name: (kernel, strategy of (dtype, args), oracle)}``: the CPU path
    against the float64 oracle, and every other path against the CPU path. Assign both to test_ names."""

    @pytest.mark.parametrize("name", sorted(cases))
    @given(data=st.data())
    def cpuMatchesOracle(name, data):
        kernel, strategy, oracle = cases[name]
        dtype, args = data.draw(strategy)
        checkAgainstOracle(kernel, args, oracle, dtype)

    @pytest.mark.parametrize("path", otherPathParams())
    @pytest.mark.parametrize("name", sorted(cases))
    @given(data=st.data())
    def otherPathsMatchCpu(path, name, data):
        kernel, strategy, _ = cases[name]
        dtype, args = data.draw(strategy)
        checkAgainstCpu(path, kernel, args, dtype)

    return cpuMatchesOracle, otherPathsMatchCpu
