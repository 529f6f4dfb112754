"""SoftMax over axis 1 (classes, or maps of (N, C, H, W) data): y = exp(x - max) / Σ exp(x - max);
backward: ∂x = y (grad - Σ_axis1 grad y). Both sums are accumulated in float32 for float16 data (a half sum over
many classes rounds away the small terms)."""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


def _softmaxGradNumpy(grad, y, dot, maps, spatial, ingrad):
    out = ingrad.reshape(-1, maps, spatial)
    numpy.subtract(grad.reshape(-1, maps, spatial), dot.reshape(-1, 1, spatial), out=out)
    out *= y.reshape(-1, maps, spatial)


softmaxGradKer = Elementwise(
    "minidl_softmax_grad",
    "T grad, T y, raw T dot, int32 maps, int32 spatial",
    "T ingrad",
    "ingrad = y * (grad - dot[i / ((long long)maps * spatial) * spatial + i % spatial])",
    _softmaxGradNumpy,
    cpuPath="numpy",  # SoftMax forward+backward on 8x10x56x56: 0.43 ms with it, 1.39 ms compiled
)


class SoftMax(Module):
    """Softmax along axis 1 of data with at least 2 dimensions."""

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if data.ndim < 2 or not numpy.issubdtype(data.dtype, numpy.floating):
            raise ModuleError(f"{self!r}: input must be floating with shape (batch, classes, ...), got "
                              f"{data.dtype} {data.shape}")

    def updData(self, data):
        data = xp.ascontiguousarray(data)  # so the output, which backward's kernel reads, is C-contiguous too
        out = xp.exp(data - data.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True, dtype=numpy.promote_types(out.dtype, numpy.float32)).astype(out.dtype)
        return out

    def updGrad(self, grad):
        grad = xp.ascontiguousarray(grad)
        dot = (grad * self.data).sum(axis=1, dtype=numpy.promote_types(grad.dtype, numpy.float32)).astype(grad.dtype)
        maps, spatial = self.data.shape[1], int(numpy.prod(self.data.shape[2:]))
        return softmaxGradKer(grad, self.data, dot, maps, spatial, xp.empty_like(grad))
