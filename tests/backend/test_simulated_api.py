"""The simulated device offers only CuPy 14's API: every name it defines exists in the real package, with a
signature whose parameters the real one has in the same order, so code that runs on the simulated device calls
nothing a GPU would not have (and a NumPy-only call fails here as it would there)."""

import inspect

import numpy
import pytest

from minidl.backend import simulated
from minidl.backend.simulated.ndarray import ndarray
from tests.optional import importCupy

cupy = importCupy()


def _parameters(function):
    try:
        return [name for name in inspect.signature(function).parameters if name != "self"]
    except (TypeError, ValueError):  # a Cython function without a signature: its name is all there is to check
        return None


def _checkSignature(where, ours, theirs):
    mine, real = _parameters(ours), _parameters(theirs)
    if mine is None or real is None or "args" in real or "kwargs" in real:
        return
    missing = [name for name in mine if name not in real]
    assert not missing, f"{where}: parameters {missing} are not CuPy's {real}"
    assert [name for name in real if name in mine] == mine, f"{where}: parameters {mine} out of CuPy's order {real}"


def _publicNames(namespace):
    return sorted(name for name in vars(namespace) if not name.startswith("_"))


def test_every_function_of_the_namespace_is_cupys():
    names = _publicNames(simulated.cupy)
    assert len(names) > 60
    for name in names:
        assert hasattr(cupy, name), f"cupy.{name} does not exist in CuPy {cupy.__version__}"
        ours = getattr(simulated.cupy, name)
        if callable(ours) and not isinstance(ours, type) and not isinstance(ours, numpy.dtype):
            _checkSignature(f"cupy.{name}", ours, getattr(cupy, name))


def test_every_method_of_the_array_is_cupys():
    names = [name for name in vars(ndarray) if not name.startswith("_")]
    assert {"get", "set", "reshape", "astype", "sum", "item"} <= set(names)
    for name in names:
        assert hasattr(cupy.ndarray, name), f"cupy.ndarray.{name} does not exist in CuPy {cupy.__version__}"
        ours = getattr(ndarray, name)
        if inspect.isfunction(ours):
            _checkSignature(f"cupy.ndarray.{name}", ours, getattr(cupy.ndarray, name))


@pytest.mark.parametrize("path", ["Stream", "Event", "Device", "get_current_stream", "runtime", "nccl", "Graph",
                                  "MemoryPool", "using_allocator"])
def test_cuda_names_are_cupys(path):
    ours = getattr(simulated.cupy.cuda, path)
    if path == "nccl":
        from cupy.cuda import nccl  # noqa: F401 - CuPy's module exists (it may not load libnccl)

        return
    theirs = getattr(cupy.cuda, path)
    if path == "runtime":
        for name in _publicNames(ours):
            assert hasattr(theirs, name), f"cupy.cuda.runtime.{name} does not exist"
        return
    if isinstance(ours, type):
        for name in (name for name in vars(ours) if not name.startswith("_")):
            assert hasattr(theirs, name), f"cupy.cuda.{path}.{name} does not exist"
            if inspect.isfunction(getattr(ours, name)):
                _checkSignature(f"cupy.cuda.{path}.{name}", getattr(ours, name), getattr(theirs, name))
    else:
        _checkSignature(f"cupy.cuda.{path}", ours, theirs)


def test_cupyx_names_are_cupyxs():
    import cupyx

    for name in _publicNames(simulated.cupyx):
        assert hasattr(cupyx, name), f"cupyx.{name} does not exist"
        _checkSignature(f"cupyx.{name}", getattr(simulated.cupyx, name), getattr(cupyx, name))


def test_a_name_cupy_lacks_fails_as_on_a_gpu():
    """A NumPy function with no CuPy twin is not in the namespace, and NumPy's own refuses a device array."""
    array = simulated.cupy.zeros(4, dtype=numpy.float32)
    assert not hasattr(simulated.cupy, "put_along_axis_host")
    with pytest.raises(TypeError):
        numpy.add.at(array, numpy.array([0, 0]), 1.0)
    with pytest.raises(TypeError):
        numpy.put_along_axis(array, numpy.array([0]), 1.0, axis=0)
    with pytest.raises(TypeError):
        numpy.asarray(array)
    with pytest.raises(TypeError):
        array + numpy.ones(4, dtype=numpy.float32)


def test_compute_type_names_are_cupys():
    """The cuBLAS compute types minidl.backend.allowTF32 sets: the same names and values as cupy._core's."""
    import cupy._core._routines_linalg  # noqa: F401  (a submodule CuPy imports, named here for clarity)

    assert _publicNames(simulated.cupy._core) == ["get_compute_type", "set_compute_type"]
    for name in _publicNames(simulated.cupy._core):
        _checkSignature(f"cupy._core.{name}", getattr(simulated.cupy._core, name), getattr(cupy._core, name))
    ours, theirs = simulated.cupy._core._routines_linalg, cupy._core._routines_linalg
    names = _publicNames(ours)
    assert {"COMPUTE_TYPE_TF32", "COMPUTE_TYPE_FP32", "set_compute_type"} <= set(names)
    for name in names:
        assert hasattr(theirs, name), f"cupy._core._routines_linalg.{name} does not exist in CuPy {cupy.__version__}"
        if name.startswith("COMPUTE_TYPE_"):
            assert getattr(ours, name) == getattr(theirs, name), name
