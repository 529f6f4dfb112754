"""LRN: the base of the local response normalisations CrossMapLRN (a window across maps) and MapLRN (a window
of rows and columns inside each map). With W(p) the window of position p (``before = (N - 1) // 2`` positions
before p, ``N - 1 - before`` after it, clipped at the ends) and ``count`` its full size (N across maps, N² in a
map),

    d[p] = K + alpha / count · Σ_{q ∈ W(p)} x[q]²,        y[p] = x[p] · d[p]^-beta,

    ∂x[r] = grad[r] d[r]^-beta - 2 alpha beta / count · x[r] · Σ_{p : r ∈ W(p)} grad[p] x[p] d[p]^(-beta-1).

The window sums are ``windowSum``'s; everything is computed in float32 at least (float16 squares overflow).
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber, checkSize


class LRN(Module):
    """Base of CrossMapLRN and MapLRN: ``(N=5, alpha=1e-4, beta=0.75, K=2.0)``; a subclass gives ``count``,
    ``ndims`` (the input ranks it takes) and ``window(a, transposed)``, the sums over W(p) (or, transposed, over
    every p whose window holds the position)."""

    cacheAttrs = ("inData", "data", "norms")
    ndims = ()

    def __init__(self, N=5, alpha=1e-4, beta=0.75, K=2.0, name=None):
        super().__init__(name)
        kind = type(self).__name__
        self.N = checkSize(N, f"{kind} window size N")
        self.alpha = checkNumber(alpha, f"{kind} alpha")
        self.beta = checkNumber(beta, f"{kind} beta")
        self.K = checkNumber(K, f"{kind} K", low=0, lowOpen=True)
        self.before = (self.N - 1) // 2
        self.after = self.N - 1 - self.before
        self.norms = None

    @property
    def count(self):
        raise NotImplementedError

    def window(self, a, transposed):
        raise NotImplementedError

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.floating) or data.ndim not in self.ndims:
            raise ModuleError(f"{self!r}: input must be floating data of {' or '.join(map(str, self.ndims))} "
                              f"dimensions (batch, maps, ...), got {data.dtype} {data.shape}")

    def updData(self, data):
        x = data.astype(numpy.promote_types(data.dtype, numpy.float32))
        self.norms = self.K + (self.alpha / self.count) * self.window(x * x, transposed=False)
        return (x * self.norms ** -self.beta).astype(data.dtype)

    def updGrad(self, grad):
        x = self.inData.astype(self.norms.dtype)
        g = grad.astype(self.norms.dtype)
        spread = self.window(g * x * self.norms ** (-self.beta - 1), transposed=True)
        factor = 2 * self.alpha * self.beta / self.count
        return (g * self.norms ** -self.beta - factor * x * spread).astype(grad.dtype)
