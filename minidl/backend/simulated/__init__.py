"""A simulated CuPy device: minidl's GPU code path run on the CPU, counted.

``MINIDL_BACKEND=simulated`` (``--device simulated`` on the command) makes ``minidl.backend`` use ``cupy`` and
``cupyx`` from here instead of CuPy's: device arrays of their own type that refuse implicit conversion as CuPy's do,
only the part of CuPy 14's API that minidl calls on the device (its batched matmul counted with the copies and
pointer arrays CuPy makes, ``cublas``: the cuBLAS call minidl makes itself, run on raw pointers), Elementwise and
Reduction launches run as their host-compiled CUDA text, streams and events in order, stream capture into CUDA graphs
(``graphs``). Every branch of minidl that
asks whether it runs on a GPU takes the GPU side.
``trace.recording()`` counts what a GPU would be asked to do: launches, products, transfers, syncs, host random
draws, memory. It is a device for tests and profiles, slower than the CPU backend, never for training; the real GPU
path is CuPy's.
"""

import types

import numpy

from minidl.backend.simulated import computetype, cublas, cuda, functions, graphs, kernels, trace
from minidl.backend.simulated import cupyx as _cupyx
from minidl.backend.simulated.ndarray import ndarray


def _namespace(name, members):
    module = types.ModuleType(name)
    module.__dict__.update(members)
    return module


_DTYPES = ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
           "float64", "complex64", "complex128", "dtype", "newaxis", "inf", "nan", "pi", "e")

for _class in (ndarray, kernels.ElementwiseKernel, kernels.ReductionKernel):
    graphs.capturable(_class)  # inside a stream capture, each call that launches is a node of the graph

cupy = _namespace("cupy", {
    **{name: getattr(numpy, name) for name in _DTYPES},
    **{name: graphs.work(value) for name, value in vars(functions).items() if callable(value)
       and not name.startswith("_") and getattr(value, "__module__", None) == functions.__name__},
    **{name: getattr(functions, name) for name in functions.FROM_NUMPY},
    "ndarray": ndarray,
    "ElementwiseKernel": kernels.ElementwiseKernel,
    "ReductionKernel": kernels.ReductionKernel,
    "_core": _namespace("cupy._core", {
        "set_compute_type": computetype.set_compute_type, "get_compute_type": computetype.get_compute_type,
        "_routines_linalg": _namespace("cupy._core._routines_linalg", {
            name: value for name, value in vars(computetype).items()
            if name.endswith("compute_type") or name.startswith("COMPUTE_TYPE_")}),
    }),
    "cuda": _namespace("cupy.cuda", {
        "Stream": cuda.Stream, "Event": cuda.Event, "Device": cuda.Device,
        "get_current_stream": cuda.get_current_stream, "runtime": cuda.runtime, "nccl": cuda.nccl,
        "Graph": graphs.Graph, "MemoryPool": graphs.MemoryPool, "using_allocator": graphs.using_allocator,
        "device": _namespace("cupy.cuda.device", {"get_cublas_handle": lambda: cublas.HANDLE}),
    }),
})
cupy.__doc__ = "The simulated device's cupy namespace (minidl.backend.simulated)."
functions.NAMESPACE["cupy"] = cupy

cupyx = _namespace("cupyx", {"empty_pinned": _cupyx.empty_pinned, "scatter_add": graphs.work(_cupyx.scatter_add)})

__all__ = ["cublas", "cupy", "cupyx", "ndarray", "trace"]
