"""Sequential: modules applied one after another; backward runs them in reverse."""

from minidl.errors import ModuleError
from minidl.nn.container import Container, uniqueNames
from minidl.nn.module import Module, checkLike


class Sequential(Container):
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

    def constructorArguments(self):
        """The modules it holds now (``append`` may have added some since it was built)."""
        if type(self).__init__ is not Sequential.__init__:  # a subclass with a constructor of its own
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
        self.inData, caches = data, []
        for module in self.modules:
            data = module(data)
            caches.append(module.saveCache())
        self.caches, self.data = caches, data
        return data

    def backward(self, grad, updGrad=True):
        if self.data is None:
            raise ModuleError(f"{self!r}: backward() called before a forward pass")
        checkLike(grad, self.data, f"{self!r}: gradient")
        for position in reversed(range(len(self.modules))):
            if grad is None:  # an Embedder's indices take no gradient: nothing flows back past it
                break
            module = self.modules[position]
            module.restoreCache(self.caches[position])
            grad = module.backward(grad, updGrad=updGrad or position > 0)
        self.grad = grad
        return grad
