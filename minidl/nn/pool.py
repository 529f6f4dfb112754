"""Pool: the base of Pool2D and Pool3D (and so of every max and average pool), which reduce each window over the
trailing axes of (N, C, ...) data to one value: the window and its checks, shared by every rank.

A subclass names ``windowType`` (Window or Window3D) and ``dataDims`` (the input's number of dimensions), and
``planeShape(shape)``, the sizes the windows slide over for an input of ``shape``, when they are not its
trailing axes (MaxPool1D's (1, length)).
"""

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray, checkNotEmpty


class Pool(Module):
    """``size``, ``stride``, ``pad``: an int or one per windowed axis; pad may be at most half the window, so that
    every window holds at least one input element. ``ceilMode``: count a last, partial window as PyTorch's
    ceil_mode."""

    padValue = 0.0

    def __init__(self, size=2, stride=2, pad=0, ceilMode=False, name=None):
        super().__init__(name)
        self.window = self.windowType(size, stride, pad, ceilMode=ceilMode)
        if any(pad > size // 2 for pad, size in zip(self.window.pad, self.window.size)):
            raise ModuleError(f"{type(self).__name__}: pad {self.window.pad} must be at most half the window "
                              f"{self.window.size}")

    def checkData(self, data):
        # floating: padding is -inf for max; the mean is fractional
        checkArray(data, f"{self!r}: input", ndim=self.dataDims, floating=True)
        checkNotEmpty(self, data)
        self.window.outShape(*self.planeShape(data.shape), f"{self!r}")

    def planeShape(self, shape):
        """The sizes the windows slide over in an input of ``shape``: its trailing axes."""
        return shape[2:]

    def pool(self, col):
        """(N C, window taps, output positions) -> (N C, output positions)."""
        raise NotImplementedError

    def unpool(self, grad):
        """grad (N C, output positions) -> the gradient of col, (N C, window taps, output positions)."""
        raise NotImplementedError
