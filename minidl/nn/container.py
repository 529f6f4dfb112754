"""Container: a module made of child modules (Sequential, Graph).

Children are named by their own ``name`` or by their position; a parameter's qualified name is
``child.var`` (``"0.W"``, ``"fc1.b"``, nested containers add more parts). A module may be used at several
places: the forward pass keeps each place's cache (``self.caches``) and backward rewinds the module to it,
so a shared module receives the sum of the gradients of all its uses. A forward pass in train mode that a child
refuses halfway puts the buffers back as they were (BatchNorm's running statistics, updated by the children that
ran).
"""

from minidl.errors import ModuleError
from minidl.nn.module import Module


class Container(Module):
    cacheAttrs = ("inData", "data", "caches")

    def __init__(self, name=None):
        super().__init__(name)
        self.caches = None

    def children(self):
        """An ordered dict from child name to module, each module once."""
        raise NotImplementedError

    running = False  # a container's pass is under way: the outermost marks and puts back the buffers

    def __call__(self, data):
        if Container.running:
            return self.forward(data)
        # buffers change in train mode only (BatchNorm's running statistics): an eval pass marks none
        marks = [(module, module.markBuffers()) for module in self.walk()
                 if module.train and not isinstance(module, Container)]
        Container.running = True
        try:
            return self.forward(data)
        except BaseException:
            for module, mark in marks:
                module.restoreBuffers(mark)
            raise
        finally:
            Container.running = False

    def forward(self, data):
        """Run the children on data; set and return ``self.data``."""
        raise NotImplementedError

    def child(self, name):
        children = self.children()
        if name not in children:
            raise ModuleError(f"{self!r} has no child {name!r}; it has {list(children)}")
        return children[name]

    def _qualifiedTable(self, tableOf):
        """The children's tables (``tableOf(child)``) merged under qualified names, each item once."""
        table, seen = {}, set()
        for childName, module in self.children().items():
            for itemName, item in tableOf(module).items():
                if id(item) not in seen:
                    seen.add(id(item))
                    table[f"{childName}.{itemName}"] = item
        return table

    def getVarTable(self):
        return self._qualifiedTable(lambda module: module.getVarTable())

    def getBufferTable(self):
        return self._qualifiedTable(lambda module: module.getBufferTable())

    def minTrainBatch(self):
        return max((module.minTrainBatch() for module in self.children().values()), default=1)

    def checkBufferValues(self, arrays):
        for childName, module in self.children().items():
            prefix = f"{childName}."
            module.checkBufferValues({name[len(prefix):]: array for name, array in arrays.items()
                                      if name.startswith(prefix)})

    def setVar(self, name, var):
        childName, _, rest = name.partition(".")
        self.child(childName).setVar(rest, var)

    def getVar(self, name):
        childName, _, rest = name.partition(".")
        return self.child(childName).getVar(rest)

    def castBuffers(self, dtype):
        for module in self.children().values():
            module.castBuffers(dtype)

    def uses(self):
        """Each use of a child in the last forward pass, in order: (child name, module, the cache of that use)."""
        raise NotImplementedError

    def walk(self):
        yield self
        for module in self.children().values():
            yield from module.walk()

    def trainMode(self):
        super().trainMode()
        for module in self.children().values():
            module.trainMode()
        return self

    def evalMode(self):
        super().evalMode()
        for module in self.children().values():
            module.evalMode()
        return self


def checkChildName(name):
    """ModuleError for a child's name that is not a string (set after construction, which refuses it) or holds a '.',
    which would run into the next part of its parameters' qualified names ("fc.1" + "W" and "fc" + "1.W" both give
    "fc.1.W")."""
    if not isinstance(name, str) or "." in name:
        raise ModuleError(f"a module inside a container may not be named {name!r}: a name is a string, a part of "
                          "its parameters' qualified names (\"fc1.W\"), which '.' separates")


def uniqueNames(modules):
    """Name each distinct module by its name or its first position; two distinct modules may not share a name,
    and no name may hold a '.'."""
    names = {}
    for position, module in enumerate(modules):
        if any(existing is module for existing in names.values()):
            continue
        name = module.name if module.name is not None else str(position)
        checkChildName(name)
        if name in names:
            raise ModuleError(f"two different modules are both named {name!r}")
        names[name] = module
    return names
