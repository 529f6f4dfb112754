"""ModuleList: the part Sequential and Parallel share, a container of modules in the order they were appended."""

from minidl.errors import ModuleError
from minidl.nn.container import Container, uniqueNames
from minidl.nn.module import Module


class ModuleList(Container):
    """Modules in order: ``append``/``extend``, ``len``, indexing, each use's cache; a subclass says what its forward
    and backward do with them."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if ModuleList in cls.__bases__:
            cls.listClass = cls  # Sequential, Parallel: the class whose constructor takes the modules

    def constructorArguments(self):
        """The modules it holds now (``append`` may have added some since it was built)."""
        if type(self).__init__ is not self.listClass.__init__:  # a subclass with a constructor of its own
            return super().constructorArguments()
        return (list(self.modules),), {}

    def append(self, module):
        return self.extend([module])

    def extend(self, modules):
        """Append ``modules`` in order; the whole list is checked first, so a refused one appends none."""
        modules = list(modules)
        for module in modules:
            if not isinstance(module, Module):
                raise ModuleError(f"{self!r}: can only append a Module, got {type(module).__name__}")
        uniqueNames(self.modules + modules)
        self.modules.extend(modules)
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
