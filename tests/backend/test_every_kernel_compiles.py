"""Every kernel minidl defines, found through the registry (so kernels added later are included without
listing them here), has CUDA text that compiles for the host with the system C++ compiler and, where nvcc
is installed, for the device. Property tests run the kernels with hypothesis; these catch the kernels and
dtypes those draws leave out.

Each kernel is compiled with its type placeholders bound to each float dtype; raw arrays are 1-D,
non-raw inputs of a fixed type are scalars (hyperparameters) and the other non-raw parameters arrays.
"""

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from minidl import BackendError
from minidl.backend import kernelsource
from minidl.testing import packageKernels

KERNELS = packageKernels()
FLOATS = [numpy.dtype(name) for name in ("float16", "float32", "float64")]
DEVICE_ARCH = "sm_90"  # H100: a current GPU, supported by the CUDA 12 and 13 toolkits


def bindings(kernel):
    """(types, ndims) per float dtype, by the rules in the module's docstring."""
    ndims = [None if not param.raw and not param.isOutput and param.dtype is not None else 1
             for param in kernel.params]
    placeholders = {param.typeName for param in kernel.params if param.dtype is None}
    return [({name: dtype for name in placeholders}, ndims) for dtype in (FLOATS if placeholders else FLOATS[:1])]


def test_the_registry_holds_the_kernels_of_every_subpackage():
    modules = {kernel.reference.__module__ for kernel in KERNELS}
    assert {"minidl.optim.adagrad", "minidl.optim.sgd", "minidl.nn.activations", "minidl.cost.mse"} <= modules
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

    kernels, types, ndims = zip(*[(kernel, *binding) for kernel in KERNELS for binding in bindings(kernel)])
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        failures = [failure for failure in pool.map(build, kernels, types, ndims) if failure]
    errors = {}
    for name, error in failures:
        errors.setdefault(name, []).append(error)
    return errors


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda kernel: kernel.name)
def test_compiles_for_the_host(kernel, hostErrors):
    if kernel.name in hostErrors:
        pytest.fail("\n\n".join(hostErrors[kernel.name]))


@pytest.fixture(scope="module")
def deviceErrors(tmp_path_factory):
    """Compile every kernel in one nvcc run (one run per unit would take ~0.4 s each); return the error
    lines per kernel name. Each binding is a unit in a namespace of its own, so typedefs do not collide."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on the PATH: the device compile check runs where it is (on CI)")
    units, source = [], kernelsource.PRELUDE
    for kernel in KERNELS:
        for types, ndims in bindings(kernel):
            index = len(units)
            start = source.count("\n") + 1
            source += f"\nnamespace unit{index} {{\n{kernelsource.cudaSource(kernel, types, ndims, f'unit{index}')}}}\n"
            binding = ", ".join(f"{name}={dtype}" for name, dtype in types.items())
            units.append((kernel.name, binding, start, source.count("\n") + 1))
    path = tmp_path_factory.mktemp("device") / "kernels.cu"
    path.write_text(source)
    result = subprocess.run([nvcc, "-cubin", f"-arch={DEVICE_ARCH}", str(path), "-o", str(path.with_suffix(".cubin"))],
                            capture_output=True, text=True)
    errors = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = re.search(r"kernels\.cu\((\d+)\): (catastrophic )?error", line)
        if match:
            number = int(match.group(1))
            owner, binding = next(((name, binding) for name, binding, start, stop in units if start <= number < stop),
                                  ("the prelude", ""))
            errors.setdefault(owner, []).append(f"[{binding}] {line}\n    {source.splitlines()[number - 1].strip()}")
    assert result.returncode == 0 or errors, f"nvcc failed without a located error:\n{result.stderr}"
    return errors


def test_the_prelude_compiles_for_the_device(deviceErrors):
    if "the prelude" in deviceErrors:
        pytest.fail("\n".join(deviceErrors["the prelude"]))


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda kernel: kernel.name)
def test_compiles_for_the_device(kernel, deviceErrors):
    if kernel.name in deviceErrors:
        pytest.fail("\n".join(deviceErrors[kernel.name]))
