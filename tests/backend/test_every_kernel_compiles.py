"""Every kernel minidl defines, found through the registry (so kernels added later are included without
listing them here), has CUDA text that compiles for the host with the system C++ compiler. Property tests
run the kernels with hypothesis; these catch the kernels and dtypes those draws leave out. The device
compile, from the source CuPy itself generates, is tests/backend/test_cupy_compiles.py.

Each kernel is compiled with its type placeholders bound to each float dtype; raw arrays are 1-D,
non-raw inputs of a fixed type are scalars (hyperparameters) and the other non-raw parameters arrays. Each
Reduction likewise, its non-raw inputs of the input's shape and its outputs arrays.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from minidl import BackendError
from minidl.testing import packageKernels, packageReductions

KERNELS = packageKernels()
REDUCTIONS = packageReductions()
FLOATS = [numpy.dtype(name) for name in ("float16", "float32", "float64")]


def bindings(kernel):
    """(types, ndims) per float dtype, by the rules in the module's docstring."""
    ndims = [None if not param.raw and not param.isOutput and param.dtype is not None else 1
             for param in kernel.params]
    placeholders = {param.typeName for param in kernel.params if param.dtype is None}
    return [({name: dtype for name in placeholders}, ndims) for dtype in (FLOATS if placeholders else FLOATS[:1])]


def test_the_registry_holds_the_kernels_of_every_subpackage():
    modules = {kernel.reference.__module__ for kernel in KERNELS}
    assert {"minidl.optim.adagrad", "minidl.optim.sgd", "minidl.nn.activationfunctions", "minidl.cost.mse"} <= modules
    assert len({kernel.name for kernel in KERNELS}) == len(KERNELS), "two kernels share a name"


@pytest.fixture(scope="module")
def hostErrors():
    """Compile every kernel for the host, on every core at once (each compile is a subprocess, ~0.2 s);
    return the compile errors per kernel name."""
    def build(kernel, types, ndims):
        try:
            assert callable(kernel.hostFunction(types, ndims).function)
        except BackendError as error:
            return kernel.name, str(error)

    def buildReduction(kernel, types, ndims):
        kinds = tuple("scalar" if ndim is None else "raw" if param.raw else "out" if param.isOutput else "full"
                      for param, ndim in zip(kernel.params, ndims))
        try:
            assert callable(kernel.hostFunction(types, kinds, tuple(ndims)).function)
        except BackendError as error:
            return kernel.name, str(error)

    def buildAny(kernel, types, ndims):
        return (buildReduction if kernel in REDUCTIONS else build)(kernel, types, ndims)

    kernels, types, ndims = zip(*[(kernel, *binding) for kernel in KERNELS + REDUCTIONS
                                  for binding in bindings(kernel)])
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        failures = [failure for failure in pool.map(buildAny, kernels, types, ndims) if failure]
    errors = {}
    for name, error in failures:
        errors.setdefault(name, []).append(error)
    return errors


@pytest.mark.parametrize("kernel", KERNELS + REDUCTIONS, ids=lambda kernel: kernel.name)
def test_compiles_for_the_host(kernel, hostErrors):
    if kernel.name in hostErrors:
        pytest.fail("\n\n".join(hostErrors[kernel.name]))
