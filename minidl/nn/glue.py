"""Glue: a module made of a user's two functions, y = forward(x, modules) and ∂e/∂x = backward(grad, modules),
where ``modules`` (a dict of name to Module) are the modules the functions may run; their parameters are the
Glue's (named ``name.W``), so optimizers train them and ``save`` keeps them.

The backward function must return ∂e/∂x for the x that forward was given and let the modules it ran add their
parameter gradients (by calling their ``backward``). A Glue keeps each module's cache as forward left it and puts it
back before backward, so a Glue may be used at several places of a network, as any module (a module its forward
function runs twice is the functions' own to rewind). To be saved with its architecture, both functions must be
registered (``minidl.nn.register(function)``): the file names them, it never holds code.
"""

from minidl.errors import ModuleError
from minidl.nn.container import Container, checkChildName
from minidl.nn.module import Module


class Glue(Container):
    """``Glue(forward, backward, modules={"split": Split(1, (5, 5))})``."""

    def __init__(self, forward, backward, modules=None, name=None):
        super().__init__(name)
        for what, function in (("forward", forward), ("backward", backward)):
            if not callable(function):
                raise ModuleError(f"Glue {what} must be a function (data or grad, modules) -> result, got "
                                  f"{type(function).__name__}")
        modules = {} if modules is None else modules
        if not isinstance(modules, dict) or not all(isinstance(key, str) and isinstance(module, Module)
                                                    for key, module in modules.items()):
            raise ModuleError(f"Glue modules must be a dict of names to Modules, got {modules!r:.80}")
        for key in modules:
            checkChildName(key)
        self.forwardGlue, self.backwardGlue, self.modules = forward, backward, dict(modules)

    def children(self):
        return dict(self.modules)

    def uses(self):
        return []

    def forward(self, data):
        result = self.forwardGlue(data, self.modules)
        self.inData, self.data = data, result
        self.caches = {name: module.saveCache() for name, module in self.modules.items()}
        return result

    def backward(self, grad, updGrad=True):
        self.checkGrad(grad)
        for name, module in self.modules.items():  # this use's caches: a later use may have run the modules since
            module.restoreCache(self.caches[name])
        self.grad = self.backwardGlue(grad, self.modules)
        return self.grad
