"""Sequential: modules applied one after another; backward runs them in reverse."""

from minidl.errors import ModuleError
from minidl.nn.module import Module
from minidl.nn.modulelist import ModuleList


class Sequential(ModuleList):
    """``Sequential(a, b, c)``, ``Sequential([a, b, c])`` or ``Sequential()`` then ``append``/``extend``;
    ``seq(data)`` runs the modules in order and returns the last one's output."""

    def __init__(self, *modules, name=None):
        super().__init__(name)
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        for position, module in enumerate(modules):
            if not isinstance(module, Module):
                raise ModuleError(f"Sequential takes Modules (or one list of them), got {type(module).__name__} "
                                  f"at position {position}")
        self.modules = []
        self.extend(modules)

    def forward(self, data):
        if not self.modules:
            raise ModuleError(f"{self!r} is empty: append modules before calling it")
        self.inData, caches = data, []
        for module in self.modules:
            data = module(data)
            caches.append(module.saveCache())
        self.caches, self.data = caches, data
        return data

    def backward(self, grad, updGrad=True):
        self.checkGrad(grad)
        first = -1 if updGrad else next((position for position, module in enumerate(self.modules)
                                        if module.getVarTable()), len(self.modules))
        for position in reversed(range(len(self.modules))):
            if grad is None:  # an Embedder's indices take no gradient: nothing flows back past it
                break
            module = self.modules[position]
            module.restoreCache(self.caches[position])
            # ∂input where a module before takes a gradient (one with parameters, first), or updGrad asks for it
            grad = module.backward(grad, updGrad=position > first)
        self.grad = grad
        return grad
