"""NoiseInjector: random noise added to, or multiplied with, the data in trainMode (a regulariser, or data
augmentation inside a network). With r drawn per element,

    mode "add": y = x + r,   ∂x = grad;        mode "mul": y = x · r,   ∂x = grad · r,

r ~ uniform in [a, b) for ``noiseType="uniform"``, ``params=(a, b)``, or normal with mean and standard deviation
for ``noiseType="gaussian"``, ``params=(mean, sigma)``. In evalMode it is the identity and draws nothing. r is
drawn in place on the device by Philox4x32-10 (``minidl.backend.uniform``/``normal``), in the data's dtype: one
seed, the same noise on every device and path (the normals up to the last bit of ln and cos: see
``minidl.backend.philox``).
"""


from minidl.backend import normal, uniform
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber

MODES = ("add", "mul")
NOISE_TYPES = ("uniform", "gaussian")


class NoiseInjector(Module):
    """``NoiseInjector(mode="add", noiseType="uniform", params=(0.0, 1.0))``: see the module's docstring."""

    cacheAttrs = ("inData", "data", "noise")

    def __init__(self, mode="add", noiseType="uniform", params=(0.0, 1.0), name=None):
        super().__init__(name)
        if mode not in MODES:
            raise ModuleError(f"NoiseInjector mode must be 'add' or 'mul', got {mode!r}")
        if noiseType not in NOISE_TYPES:
            raise ModuleError(f"NoiseInjector noiseType must be 'uniform' or 'gaussian', got {noiseType!r}")
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ModuleError(f"NoiseInjector params must be a pair (a, b) or (mean, sigma), got {params!r}")
        first = checkNumber(params[0], f"NoiseInjector {noiseType} params[0]")
        if noiseType == "uniform":
            second = checkNumber(params[1], "NoiseInjector uniform params[1] (b)", low=first)
        else:
            second = checkNumber(params[1], "NoiseInjector gaussian params[1] (sigma)", low=0)
        self.mode, self.noiseType, self.params = mode, noiseType, (first, second)
        self.noise = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", floating=True)

    def _draw(self, shape, dtype):
        draw = uniform if self.noiseType == "uniform" else normal
        return draw(shape, *self.params, dtype=dtype)

    def updData(self, data):
        if not self.train:
            self.noise = None
            return data
        self.noise = self._draw(data.shape, data.dtype)
        return data + self.noise if self.mode == "add" else data * self.noise

    def updGrad(self, grad):
        if self.noise is None or self.mode == "add":
            return grad
        return grad * self.noise
