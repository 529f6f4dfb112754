"""Parallel: modules side by side, module k applied to input k: [x₀, x₁, ...] to [m₀(x₀), m₁(x₁), ...]; backward
hands gradient k to module k and returns the list of input gradients. A module placed twice gets the sum of
both uses' parameter gradients (each use's cache is kept, as in Sequential)."""

from minidl.errors import ModuleError
from minidl.nn.container import Container, uniqueNames
from minidl.nn.module import Module, checkLike, describe


class Parallel(Container):
    """``Parallel(a, b)``, ``Parallel([a, b])`` or ``Parallel()`` then ``append``/``extend``."""

    def __init__(self, *modules, name=None):
        super().__init__(name)
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        self.modules = []
        self.extend(modules)

    def constructorArguments(self):
        """The modules it holds now (``append`` may have added some since it was built)."""
        if type(self).__init__ is not Parallel.__init__:  # a subclass with a constructor of its own
            return super().constructorArguments()
        return (list(self.modules),), {}

    def append(self, module):
        if not isinstance(module, Module):
            raise ModuleError(f"{self!r}: can only append a Module, got {type(module).__name__}")
        uniqueNames(self.modules + [module])
        self.modules.append(module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return len(self.modules)

    def __getitem__(self, index):
        return self.modules[index]

    def children(self):
        return uniqueNames(self.modules)

    def uses(self):
        names = {id(module): name for name, module in self.children().items()}
        return [(names[id(module)], module, cache) for module, cache in zip(self.modules, self.caches or [])]

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
        if self.data is None:
            raise ModuleError(f"{self!r}: backward() called before a forward pass")
        checkLike(grad, self.data, f"{self!r}: gradient")
        grads = []
        for module, cache, item in zip(self.modules, self.caches, grad):
            module.restoreCache(cache)
            grads.append(module.backward(item, updGrad=updGrad))
        self.grad = grads if updGrad else None
        return self.grad
