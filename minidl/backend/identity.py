"""What a run's numbers depend on besides its code and data: the device and the versions of what computes them.

``deviceIdentity()`` is a JSON-ready dict: the backend (``numpy``, ``cupy`` or ``simulated``), NumPy's version,
the CPU kernels' path (``MINIDL_CPU_KERNELS``) and the C++ compiler's first ``--version`` line (None without a
compiler), and on a real GPU CuPy's version, the CUDA runtime, driver and NVRTC versions and the device's name.
"""

import subprocess

import numpy

from minidl.backend import hostkernel
from minidl.backend.device import cupy, name
from minidl.errors import BackendError


def compilerVersion():
    """The C++ compiler's first ``--version`` line, or None when there is no compiler."""
    compiler = hostkernel.findCompiler()
    if compiler is None:
        return None
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackendError(f"the C++ compiler failed: $ {compiler} --version\n{result.stderr}")
    return result.stdout.splitlines()[0].strip()


def deviceIdentity():
    identity = {"backend": name, "numpy": numpy.__version__, "cpuKernels": hostkernel.cpuKernels(),
                "compiler": compilerVersion()}
    if name == "cupy":
        runtime = cupy.cuda.runtime
        identity.update(cupy=cupy.__version__, cudaRuntime=runtime.runtimeGetVersion(),
                        cudaDriver=runtime.driverGetVersion(), nvrtc=list(cupy.cuda.nvrtc.getVersion()),
                        device=runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode())
    return identity
