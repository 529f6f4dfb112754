"""``cupy.ElementwiseKernel`` of the simulated device: CuPy's constructor and call, run as the kernel's CUDA text
compiled for the host (minidl's host path), one launch of ``size`` threads per call.

It takes device arrays only (a NumPy array is a TypeError, as in CuPy), binds its type placeholders from them and
types its scalars as CuPy does (minidl's Elementwise has checked the call before it gets here), and counts the
bytes it moves: a non-raw array whole, read for
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
        self._functions = {}  # (dtypes, ndims) -> the compiled host function

    def _hostKernel(self):
        """minidl's Elementwise of the same text, for its parsed parameters and its host functions (made at the first
        call: it imports this device's backend); it is not a kernel of the package, so it leaves the registry."""
        if self._host is None:
            from minidl.backend import elementwise

            self._host = elementwise.Elementwise(self.name, self.in_params, self.out_params, self.operation,
                                                 reference=None, preamble=self.preamble)
            elementwise.registry.remove(self._host)
        return self._host

    def __call__(self, *args, size=None, block_size=None):
        kernel = self._hostKernel()
        if len(args) != len(kernel.params):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} for {len(kernel.params)}")
        hosts, types = [], {}
        for param, arg in zip(kernel.params, args):
            if isinstance(arg, numpy.ndarray):
                raise TypeError(f"{self.name}: Unsupported type {type(arg)}: kernels take device arrays (as in CuPy)")
            if isinstance(arg, ndarray):
                hosts.append(arg._host)
                if param.dtype is None and types.setdefault(param.typeName, arg.dtype) != arg.dtype:
                    raise TypeError(f"{self.name}: type is mismatched: {param.typeName} is {types[param.typeName]} "
                                    f"and {arg.dtype}")
            else:
                hosts.append(arg)
        typed = [host if isinstance(host, numpy.ndarray) else
                 numpy.dtype(param.dtype if param.dtype is not None else types[param.typeName]).type(host)
                 for param, host in zip(kernel.params, hosts)]
        elementwise = [host for param, host in zip(kernel.params, typed)
                       if isinstance(host, numpy.ndarray) and not param.raw]
        if len({host.shape for host in elementwise}) > 1:
            raise ValueError(f"{self.name}: shapes of the elementwise arrays differ (minidl does not broadcast)")
        loop = size if size is not None else elementwise[0].size
        ndims = [(host.ndim if param.raw else 1) if isinstance(host, numpy.ndarray) else None
                 for param, host in zip(kernel.params, typed)]
        key = (tuple(host.dtype for host in typed), tuple(ndims))
        function = self._functions.get(key)
        if function is None:
            function = self._functions[key] = kernel.hostFunction(types, ndims)
        function(loop, typed, [host.shape for param, host in zip(kernel.params, typed) if param.raw])
        arrays = [(param, host) for param, host in zip(kernel.params, typed) if isinstance(host, numpy.ndarray)]
        read = sum(host.nbytes for param, host in arrays if not param.isOutput)
        written = sum(host.nbytes for param, host in arrays if param.isOutput)
        trace.recordLaunch(self.name, loop, read, written, max(host.size for _, host in arrays))
        outputs = [arg for arg, param in zip(args, kernel.params) if param.isOutput]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
