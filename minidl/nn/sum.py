"""Sum: the input summed over ``axis``, y = Σᵢ x[..., i, ...] (the axis removed), or with weights v of the
input's shape up to and including ``axis``, y = Σᵢ v[..., i] · x[..., i, ...] (an attention-weighted sum).

Backward: ∂e/∂x[..., i, ...] = v[..., i] · grad (v = 1 without weights), and ∂e/∂v[..., i] = Σ over the axes
after ``axis`` of x[..., i, ...] · grad."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger


class Sum(Module):
    """``Sum(axis, useWeights=True)``: with ``useWeights`` (the default) a list [x, v]; without, x alone."""

    def __init__(self, axis, useWeights=True, name=None):
        super().__init__(name)
        self.axis = checkInteger(axis, "Sum axis", minimum=0)
        if not isinstance(useWeights, bool):
            raise ModuleError(f"Sum useWeights must be True or False, got {useWeights!r}")
        self.useWeights = useWeights

    def checkData(self, data):
        what = f"{self!r}: input"
        if self.useWeights:
            if not isinstance(data, (list, tuple)) or len(data) != 2:
                raise ModuleError(f"{what} must be a list [data, weights] (useWeights=True)")
            checkArray(data[0], f"{what} data")
            checkArray(data[1], f"{what} weights", dtype=data[0].dtype)
            if data[1].shape != data[0].shape[:self.axis + 1]:
                raise ModuleError(f"{what}: weights must have shape {data[0].shape[:self.axis + 1]} (the data's "
                                  f"up to axis {self.axis}), got {data[1].shape}")
            data = data[0]
        checkArray(data, what)
        if data.ndim <= self.axis:
            raise ModuleError(f"{what} needs more than {self.axis} axes to sum over axis {self.axis}, got "
                              f"shape {data.shape}")

    def _weights(self, v, ndim):
        """v with trailing axes of size 1, to broadcast against data of ``ndim`` axes."""
        return v.reshape(v.shape + (1,) * (ndim - v.ndim))

    def updData(self, data):
        if not self.useWeights:
            return data.sum(axis=self.axis)
        x, v = data
        return (x * self._weights(v, x.ndim)).sum(axis=self.axis)

    def updGrad(self, grad):
        x, v = self.inData if self.useWeights else (self.inData, None)
        spread = xp.broadcast_to(xp.expand_dims(grad, self.axis), x.shape)
        if v is None:
            return xp.ascontiguousarray(spread)
        wgrad = (x * spread).reshape(v.shape + (-1,)).sum(axis=-1)
        return [spread * self._weights(v, x.ndim), wgrad]
