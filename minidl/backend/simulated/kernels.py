"""``cupy.ElementwiseKernel`` of the simulated device: CuPy's constructor and call, run as the kernel's CUDA text
compiled for the host (minidl's host path), one launch of ``size`` threads per call.

It takes device arrays only (a NumPy array is a TypeError, as in CuPy), binds its type placeholders from them and
types its scalars as CuPy does (minidl's Elementwise has checked the call before it gets here), and counts the
bytes it moves: a non-raw array whole, read for
an input and written for an output; a raw array whole as well (what the kernel indexes in it is not seen here). A call
over an empty loop launches nothing, as in CuPy.
"""

import numpy

from minidl.backend import hostkernel
from minidl.backend.simulated import trace
from minidl.backend.simulated.ndarray import REDUCTION_BLOCK, ndarray


def hostKernel(kind, *args, **keywords):
    """minidl's kernel class of this kind (``hostkernel.kernelClasses``) made for the same text: its parsed
    parameters, checks and host functions run the kernel here. It is not a kernel of the package, so it leaves the
    class's registry."""
    kernelClass, registry = hostkernel.kernelClasses[kind]
    kernel = kernelClass(*args, **keywords)
    registry.remove(kernel)
    return kernel


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
            self._host = hostKernel("ElementwiseKernel", self.name, self.in_params, self.out_params, self.operation,
                                    reference=None, preamble=self.preamble)
        return self._host

    def __call__(self, *args, size=None, block_size=None):
        kernel = self._hostKernel()
        if len(args) != len(kernel.params):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} for {len(kernel.params)}")
        hosts, types = [], {}
        for param, arg in zip(kernel.params, args):
            if isinstance(arg, numpy.ndarray):
                raise TypeError(f"{self.name}: Unsupported type {type(arg)}: kernels take device arrays (as in CuPy)")
            if param.isOutput and not isinstance(arg, ndarray):
                raise TypeError(f"{self.name}: Output arguments must be cupy.ndarray, got {type(arg).__name__}")
            if isinstance(arg, ndarray):
                hosts.append(arg._host)
                if param.dtype is not None and arg.dtype != param.dtype:
                    raise TypeError(f"{self.name}: Type is mismatched. {param.name} {arg.dtype} {param.dtype}")
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
        if size is not None and elementwise:  # CuPy's check_args
            raise ValueError(f"{self.name}: Specified 'size' can be used only if all of the ndarray are 'raw'.")
        if size is None and not elementwise:
            raise ValueError(f"{self.name}: Loop size is undecided.")
        if len({host.shape for host in elementwise}) > 1:
            raise ValueError(f"{self.name}: shapes of the elementwise arrays differ (minidl does not broadcast)")
        loop = size if size is not None else elementwise[0].size
        outputs = [arg for arg, param in zip(args, kernel.params) if param.isOutput]
        if loop == 0:  # as in CuPy: nothing to launch
            return outputs[0] if len(outputs) == 1 else tuple(outputs)
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
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _ceilPowerOf2(value):
    return 1 << max(0, int(value) - 1).bit_length()


def reductionThreads(plan):
    """The threads CuPy launches for a reduction of this ``Plan`` (``cupy._core._reduction._get_block_specs``):
    blocks of REDUCTION_BLOCK threads, each block serving ``blockStride`` output elements (a power of 2: more of them
    when each reduces few values, up to 32 when the inputs are contiguous along the kept axes), so output elements
    x threads per output element."""
    inSize = int(numpy.prod(plan.inShape, dtype=numpy.int64))
    outSize = int(numpy.prod(plan.outShape, dtype=numpy.int64))
    kept = [axis for axis, side in enumerate(plan.inShape) if axis not in plan.axes and side > 1]
    # CuPy's contiguous size: the output's elements when an input steps one element along its last kept axis
    # (a full input whose later axes are all 1, or an input of the output's shape), else 1
    contiguous = 1
    if kept:
        last = kept[-1]
        if "kept" in plan.kinds or ("full" in plan.kinds and all(side == 1 for side in plan.inShape[last + 1:])):
            contiguous = outSize
    perOutput = max(1, inSize // max(outSize, 1))
    blockStride = max(min(contiguous, 32), REDUCTION_BLOCK // perOutput)
    blockStride = _ceilPowerOf2(blockStride // 2 + 1)
    return (outSize + blockStride - 1) // blockStride * REDUCTION_BLOCK


class ReductionKernel:
    """``cupy.ReductionKernel``, run by the host-compiled path of the same text; its outputs are passed (minidl
    allocates none), as positional arguments after the inputs."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce_kernel",
                 reduce_type=None, reduce_dims=True, preamble="", options=()):
        self.in_params, self.out_params = in_params, out_params
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.reduce_type = identity, name, reduce_type
        self.preamble, self.options = preamble, tuple(options)
        self._host = None

    def _hostKernel(self):
        """minidl's Reduction of the same text (made at the first call), out of the package's registry."""
        if self._host is None:
            self._host = hostKernel("ReductionKernel", self.name, self.in_params, self.out_params, self.map_expr,
                                    self.reduce_expr, self.post_map_expr, self.identity, reference=None,
                                    reduceType=self.reduce_type, preamble=self.preamble)
        return self._host

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        kernel = self._hostKernel()
        if out is not None or len(args) != len(kernel.params):
            raise TypeError(f"{self.name}: the simulated device takes every input and output as an argument "
                            f"({len(kernel.params)}), got {len(args)}{' and out=' if out is not None else ''}")
        if any(isinstance(arg, numpy.ndarray) for arg in args):
            raise TypeError(f"{self.name}: Unsupported type {numpy.ndarray}: kernels take device arrays (as in CuPy)")
        hosts = [arg._host if isinstance(arg, ndarray) else arg for arg in args]
        typed, _, plan = kernel.checkArgs(hosts, axis, keepdims)
        kernel._runCompiled(typed, plan)
        arrays = [(param, host) for param, host in zip(kernel.params, typed) if isinstance(host, numpy.ndarray)]
        read = sum(host.nbytes for param, host in arrays if not param.isOutput)
        written = sum(host.nbytes for param, host in arrays if param.isOutput)
        if numpy.prod(plan.outShape, dtype=numpy.int64) > 0:  # CuPy launches nothing for an empty output
            trace.recordLaunch(self.name, reductionThreads(plan), read, written, max(host.size for _, host in arrays))
        outputs = [arg for arg, param in zip(args, kernel.params) if param.isOutput]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
