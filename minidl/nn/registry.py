"""The registry of the types and functions a saved architecture may name (minidl.nn.architecture): every module
class of minidl joins it when it is defined (``Module.__init_subclass__``), every activation function here, and
``minidl.nn.register`` adds a user's class or function. It imports no module class, so that Module can fill it."""

from minidl.errors import ModuleError
from minidl.nn import activationfunctions
from minidl.nn.activationfunctions import ActivationFunction

CLASSES = {}  # name -> class
FUNCTIONS = {}  # name -> function (the activation functions, Glue's functions a user registers)


def enter(table, obj, name):
    """Put ``obj`` into ``table`` (CLASSES or FUNCTIONS) under ``name`` (None: its ``__qualname__``, or an
    activation's ``name``); returns ``obj``. ModuleError for a missing name or one taken by another object."""
    if name is None:
        name = obj.name if isinstance(obj, ActivationFunction) else getattr(obj, "__qualname__", None)
    if not isinstance(name, str) or not name or "<" in name:
        raise ModuleError(f"register needs a name for {obj!r} (a lambda or local function has none): "
                          f"register(obj, name='...')")
    if table.get(name, obj) is not obj:
        raise ModuleError(f"the name {name!r} is registered already, for {table[name]!r}")
    table[name] = obj
    return obj


def registeredName(obj, table):
    for name, known in table.items():
        if known is obj:
            return name
    return None


def _enterActivations():
    for value in vars(activationfunctions).values():
        if isinstance(value, ActivationFunction):
            enter(FUNCTIONS, value, None)


_enterActivations()
