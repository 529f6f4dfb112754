"""MapLRN: local response normalisation inside each map. On (N, C, H, W) data, at each position p of a map, with
the N x N window of rows and columns [p - (N-1)//2, p + N - 1 - (N-1)//2] clipped to the map,

    y[p] = x[p] / (K + alpha / N² · Σ_{q in window} x[q]²)^beta;

the backward pass is LRN's (minidl/nn/lrn.py). (cuDNN's LRN "within channel" mode; PyTorch has no such layer.)
"""

from minidl.nn.lrn import LRN
from minidl.nn.windowsum import planeWindowSum


class MapLRN(LRN):
    """``MapLRN(N=5, alpha=1e-4, beta=0.75, K=2.0)`` over N x N windows of each map of (batch, maps, H, W)."""

    ndims = (4,)

    @property
    def count(self):
        return self.N * self.N

    def window(self, a, transposed):
        before, after = (self.after, self.before) if transposed else (self.before, self.after)
        return planeWindowSum(a, before, after)
