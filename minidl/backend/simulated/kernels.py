"""``cupy.ElementwiseKernel`` of the simulated device: CuPy's constructor and call, run as the kernel's CUDA text
compiled for the host (minidl's host path), one launch of ``size`` threads per call.

It takes device arrays only (a NumPy array is a TypeError, as in CuPy), checks the arguments by minidl's rules
(which refuse what CuPy refuses, and a little more), and counts the bytes it moves: a non-raw array whole, read for
an input and written for an output; a raw array whole as well (what the kernel indexes in it is not seen here).
"""

import numpy

from minidl.backend.simulated import trace
from minidl.backend.simulated.ndarray import ndarray


class ElementwiseKernel:
    """A kernel made from CuPy's vocabulary, run by the host-compiled path of the same text."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", options=()):
        self.in_params, self.out_params, self.operation = in_params, out_params, operation
        self.name, self.preamble, self.options = name, preamble, tuple(options)
        self._host = None

    def _hostKernel(self):
        """minidl's Elementwise of the same text (made at the first call: it imports this device's backend)."""
        if self._host is None:
            from minidl.backend import elementwise

            self._host = elementwise.Elementwise(self.name, self.in_params, self.out_params, self.operation,
                                                 reference=None, preamble=self.preamble)
            elementwise.registry.remove(self._host)  # CuPy's twin of a package kernel, not a kernel of its own
        return self._host

    def __call__(self, *args, size=None, block_size=None):
        for arg in args:
            if isinstance(arg, numpy.ndarray):
                raise TypeError(f"{self.name}: Unsupported type {type(arg)}: kernels take device arrays (as in CuPy)")
        kernel = self._hostKernel()
        hosts = [arg._host if isinstance(arg, ndarray) else arg for arg in args]
        outputs = kernel.callCompiled(*hosts, size=size)
        loop = size if size is not None else next(
            host.size for param, host in zip(kernel.params, hosts) if isinstance(host, numpy.ndarray) and not param.raw
        )
        arrays = [(param, host) for param, host in zip(kernel.params, hosts) if isinstance(host, numpy.ndarray)]
        read = sum(host.nbytes for param, host in arrays if not param.isOutput)
        written = sum(host.nbytes for param, host in arrays if param.isOutput)
        trace.recordLaunch(self.name, loop, read, written, max(host.size for _, host in arrays))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        devices = [arg for arg, param in zip(args, kernel.params) if param.isOutput]
        return devices[0] if len(devices) == 1 else tuple(devices)
