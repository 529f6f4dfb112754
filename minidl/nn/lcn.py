"""LCN: local contrast normalisation (PuzzleLib's). On (N, C, H, W) data, with the N x N window W(p) of rows and
columns centred on each position p (N odd), m[p] the local mean of SubtractMean(N, includePad) (div[p] = N², or
the count n[p] of window positions inside the map without ``includePad``), S1 and S2 the window sums of x and
x² over the positions inside the map,

    D[p] = Σ_{q in W(p)} (x[q] - m[p])² = S2[p] - 2 m[p] S1[p] + n[p] m[p]²   (clamped at 0),
    d[p] = K + alpha / N² · D[p],        y[p] = x[p] · d[p]^-beta.

Backward, with c = alpha / N², h = -2 beta c · grad · x · d^(-beta-1), A = S1 - n m and Σ_W the (symmetric)
window sum:  ∂x = grad d^-beta + x Σ_W(h) - Σ_W(h m) - Σ_W(h A / div).  Computed in float32 at least.
"""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.nn.subtractmean import checkOddSize, windowCounts
from minidl.nn.windowsum import planeWindowSum
from minidl.validation import checkNumber


class LCN(Module):
    """``LCN(N=5, alpha=1e-4, beta=0.75, K=2.0, includePad=True)`` on (batch, maps, H, W) data."""

    cacheAttrs = ("inData", "data", "means", "norms", "deviation", "divisor")

    def __init__(self, N=5, alpha=1e-4, beta=0.75, K=2.0, includePad=True, name=None):
        super().__init__(name)
        self.N = checkOddSize(N, "LCN window size N")
        self.alpha = checkNumber(alpha, "LCN alpha")
        self.beta = checkNumber(beta, "LCN beta")
        self.K = checkNumber(K, "LCN K", low=0, lowOpen=True)
        if not isinstance(includePad, bool):
            raise ModuleError(f"LCN includePad must be True or False, got {includePad!r}")
        self.includePad = includePad
        self.means = self.norms = self.deviation = self.divisor = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, floating=True)

    def updData(self, data):
        x = data.astype(numpy.promote_types(data.dtype, numpy.float32))
        radius = self.N // 2
        inside = windowCounts(data.shape[2], data.shape[3], radius, x.dtype)
        self.divisor = float(self.N * self.N) if self.includePad else inside
        sums, squares = planeWindowSum(x, radius, radius), planeWindowSum(x * x, radius, radius)
        self.means = sums / self.divisor
        spread = xp.maximum(squares - 2 * self.means * sums + inside * self.means * self.means, 0)
        self.deviation = sums - inside * self.means  # A = Σ_W (x - m)
        self.norms = self.K + (self.alpha / (self.N * self.N)) * spread
        return (x * self.norms ** -self.beta).astype(data.dtype)

    def updGrad(self, grad):
        g = grad.astype(self.norms.dtype)
        x = self.inData.astype(self.norms.dtype)
        radius = self.N // 2
        h = (-2 * self.beta * self.alpha / (self.N * self.N)) * g * x * self.norms ** (-self.beta - 1)
        result = (g * self.norms ** -self.beta + x * planeWindowSum(h, radius, radius)
                  - planeWindowSum(h * self.means + h * self.deviation / self.divisor, radius, radius))
        return result.astype(grad.dtype)
