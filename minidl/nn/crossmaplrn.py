"""CrossMapLRN: local response normalisation across maps (AlexNet's, ONNX's LRN). On (N, C, ...) data, for map
c at each position, with the window of maps [c - (N-1)//2, c + N - 1 - (N-1)//2] clipped to [0, C),

    y[c] = x[c] / (K + alpha / N · Σ_{c' in window} x[c']²)^beta;

the backward pass is LRN's (minidl/nn/lrn.py). For odd N the window is centred, as PyTorch's
LocalResponseNorm(N, alpha, beta, K) (for even N PyTorch looks one map further back, ONNX and minidl one map
further ahead).
"""

from minidl.nn.lrn import LRN
from minidl.nn.windowsum import windowSum


class CrossMapLRN(LRN):
    """``CrossMapLRN(N=5, alpha=1e-4, beta=0.75, K=2.0)`` across the maps of (batch, maps, ...) data."""

    ndims = (3, 4, 5)

    @property
    def count(self):
        return self.N

    def window(self, a, transposed):
        before, after = (self.after, self.before) if transposed else (self.before, self.after)
        return windowSum(a, 1, before, after)
