"""Variable: a trainable array, its gradient, and per-variable scales of the optimizer's learning rate and decay."""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError

FLOAT_DTYPES = tuple(numpy.dtype(name) for name in ("float16", "float32", "float64"))


class Rebinds:
    """How many times any Variable's ``data`` or ``grad`` was bound to an array, a module's Variable or buffers
    replaced (``Module.setVar``, ``calcMode``) or a module's number set to a new value (``Module.__setattr__``):
    what a recorded pass (``minidl.nn.captured``, ``minidl.train.capturedstep``) compares to know that what it
    took as given still holds."""

    count = 0


class Variable:
    """``data`` and ``grad`` are C-contiguous device arrays of one shape and one dtype (float16, float32 or
    float64), what the optimizers' kernels update; ``grad`` holds ∂error/∂data.

    ``learnRate`` (default 1.0) multiplies the optimizer's learning rate for this variable only, and ``wc``
    (default 1.0) the rate of the decay hooks (``WeightDecay``, ``L1Decay``); ``wc=0`` exempts it (a bias, say).
    An optimizer set up with global state replaces ``data`` and ``grad`` by views into its flat buffers,
    so code must update them in place (``var.grad += g``), never rebind them.
    """

    def __init__(self, data, grad=None, name=None, learnRate=1.0, wc=1.0):
        if not isinstance(data, xp.ndarray):
            raise ModuleError(f"Variable data must be a {xp.__name__} array, got {type(data).__name__}")
        if numpy.dtype(data.dtype) not in FLOAT_DTYPES:
            raise ModuleError(f"Variable data must have a floating dtype the kernels take (float16, float32 or "
                              f"float64), got {data.dtype}")
        if grad is None:
            grad = xp.zeros_like(data)
        elif not isinstance(grad, xp.ndarray) or grad.shape != data.shape or grad.dtype != data.dtype:
            raise ModuleError(
                f"Variable grad must be a {data.dtype} array of shape {data.shape}, got "
                f"{getattr(grad, 'dtype', type(grad).__name__)} {getattr(grad, 'shape', '')}"
            )
        for what, array in (("data", data), ("grad", grad)):
            if not array.flags.c_contiguous:  # the optimizer's kernels would refuse it halfway through a step
                raise ModuleError(f"Variable {what} must be C-contiguous, got strides {array.strides}")
        self.data = data
        self.grad = grad
        self.name = name
        self.learnRate = learnRate
        self.wc = wc

    def __setattr__(self, name, value):
        if name in ("data", "grad") and self.__dict__.get(name) is not value:  # ``var.grad += g`` binds it again
            Rebinds.count += 1
        object.__setattr__(self, name, value)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def set(self, data):
        """Copy values into ``data`` in place, keeping any optimizer's view valid; the shape must match."""
        if tuple(data.shape) != self.data.shape:
            raise ModuleError(f"Variable {self.name or ''} has shape {self.data.shape}, got {tuple(data.shape)}")
        self.data[...] = xp.asarray(data, dtype=self.data.dtype)

    def __repr__(self):
        return f"Variable(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"
