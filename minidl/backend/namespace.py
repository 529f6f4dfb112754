"""ArrayNamespace: the backend's array module (NumPy or CuPy) as minidl's modules reach it, ``xp``.

It holds the module's own names, so ``xp.matmul`` is ``numpy.matmul`` and costs what a module attribute costs; what
it adds is ``replaced(wrap)``, which hands out ``wrap(function)`` for every public function of the module while a
block runs (a recording tape, ``minidl.backend.tape``, makes them record what they compute).
"""

import contextlib
import types


class ArrayNamespace(types.ModuleType):
    def __init__(self, module):
        super().__init__(module.__name__, module.__doc__)
        self.__dict__.update(vars(module))
        self.module = module

    @contextlib.contextmanager
    def replaced(self, wrap):
        """Inside the block, each public function of the module (classes and submodules aside) is ``wrap(it)``."""
        originals = {name: value for name, value in vars(self.module).items() if not name.startswith("_")
                     and callable(value) and not isinstance(value, (type, types.ModuleType))}
        self.__dict__.update({name: wrap(value) for name, value in originals.items()})
        try:
            yield
        finally:
            self.__dict__.update(originals)
