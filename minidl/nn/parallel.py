"""Parallel: modules side by side, module k applied to input k: [x₀, x₁, ...] to [m₀(x₀), m₁(x₁), ...]; backward
hands gradient k to module k and returns the list of input gradients. A module placed twice gets the sum of
both uses' parameter gradients (each use's cache is kept, as in Sequential)."""

from minidl.errors import ModuleError
from minidl.nn.module import describe
from minidl.nn.modulelist import ModuleList


class Parallel(ModuleList):
    """``Parallel(a, b)``, ``Parallel([a, b])`` or ``Parallel()`` then ``append``/``extend``."""

    def __init__(self, *modules, name=None):
        super().__init__(name)
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        self.modules = []
        self.extend(modules)

    def forward(self, data):
        if not self.modules:
            raise ModuleError(f"{self!r} is empty: append modules before calling it")
        if not isinstance(data, (list, tuple)) or len(data) != len(self.modules):
            raise ModuleError(f"{self!r} expects a list of {len(self.modules)} inputs, one per module, got "
                              f"{describe(data)}")
        outputs, caches = [], []
        for module, item in zip(self.modules, data):
            outputs.append(module(item))
            caches.append(module.saveCache())
        self.inData, self.caches, self.data = data, caches, outputs
        return outputs

    def backward(self, grad, updGrad=True):
        self.checkGrad(grad)
        grads = []
        for module, cache, item in zip(self.modules, self.caches, grad):
            module.restoreCache(cache)
            grads.append(module.backward(item, updGrad=updGrad))
        self.grad = grads if updGrad else None
        return self.grad
