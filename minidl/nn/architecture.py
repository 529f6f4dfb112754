"""The architecture of a network as JSON: what ``save`` and ``saveCheckpoint`` write beside the weights, and what
``minidl.load`` rebuilds the network from.

Every module records the arguments of its constructor when it is built (``Module.constructorArguments``;
Sequential gives its current list of modules instead). The architecture is a list of items, each built from
items before it, and the index of the network's item:

    {"version": 1, "root": 4, "items": [
        {"module": "Linear", "args": [3, 4], "kwargs": {}, "name": "inp", "dtype": "float32"},
        {"node": {"module": 0, "parents": []}},
        ...]}

A module item names a type of the registry, its positional and keyword arguments, its name, and the dtype of its
parameters when they share one (``Module.stateDtypes``: a fixed table that follows calcMode counts too; ``calcMode``
is applied again when the rebuilt module's differs). A node item names its module's item and, per parent, ``[item,
output index or null]``: a module used by several nodes (a shared module) is one item that several nodes name.
Arguments are JSON, with tagged objects for the rest: ``{"$tuple": [...]}``, ``{"$dict": {...}}``, ``{"$dtype":
"float16"}``, ``{"$ref": item}`` (a module or a node), ``{"$output": [item, index]}`` (``node[index]``),
``{"$function": "relu"}`` (a registered function), ``{"$array": {"dtype", "shape", "data", "device"}}``.

Loading (``minidl.nn.rebuild``) never runs code from the file: types and functions are looked up in the registry
(``minidl.nn.registry``: every module class of minidl is in it; ``register`` adds a user's class or function), and
anything else is refused.
A network that cannot be described (an argument of none of the kinds above, an unregistered class or function,
modules given one Variable by ``setVar``) is still saved: its architecture entry says why it is missing, and
``minidl.load`` reports that reason.
"""

import json

import numpy

from minidl.backend import isDeviceArray, toHost
from minidl.errors import ModuleError
from minidl.nn.registry import CLASSES, FUNCTIONS, registeredName
from minidl.nn.toposort import topologicalOrder

VERSION = 1
METADATA_KEY = "architecture"


class Undescribable(ModuleError):
    """A module or argument that the architecture's JSON cannot hold (the reason is the message)."""


def describe(module):
    """The architecture of ``module`` as a JSON-able dict; Undescribable says why it cannot be."""
    encoder = _Encoder()
    root = encoder.module(module)
    return {"version": VERSION, "root": root, "items": encoder.items}


def architectureMetadata(module):
    """The metadata entry that carries ``module``'s architecture, or the reason it cannot be described."""
    try:
        spec = describe(module)
    except Undescribable as error:
        spec = {"version": VERSION, "unavailable": str(error)}
    return {METADATA_KEY: json.dumps(spec, separators=(",", ":"))}


class _Encoder:
    def __init__(self):
        self.items = []
        self.indices = {}  # id(module or node) -> item index
        self.keep = []  # the objects indexed, kept alive so that their ids stay theirs
        self.owners = {}  # id(Variable) -> the module whose own vars hold it

    def _add(self, obj, item):
        self.items.append(item)
        self.indices[id(obj)] = len(self.items) - 1
        self.keep.append(obj)
        return len(self.items) - 1

    def module(self, module):
        if id(module) in self.indices:
            return self.indices[id(module)]
        typeName = registeredName(type(module), CLASSES)
        if typeName is None:
            raise Undescribable(f"{module!r}: its class {type(module).__qualname__} is not registered: "
                                "call minidl.nn.register on it")
        args, kwargs = module.constructorArguments()
        what = f"{module!r}"
        item = {"module": typeName, "args": [self.value(arg, what) for arg in args],
                "kwargs": {key: self.value(arg, what) for key, arg in kwargs.items()}}
        if module.name is not None:
            item["name"] = module.name
        dtypes = module.stateDtypes()
        if len(dtypes) == 1:
            item["dtype"] = dtypes.pop().name
        if id(module) in self.indices:
            raise Undescribable(f"{module!r} is among its own constructor's arguments")
        for name, var in module.vars.items():
            owner = self.owners.setdefault(id(var), module)
            if owner is not module:  # rebuilt from their constructors, the two would hold a Variable each
                raise Undescribable(f"{module!r}: its Variable {name!r} is also the Variable of {owner!r} (tied with "
                                    "setVar), which a saved architecture cannot hold: build the network in code and "
                                    "read the file with module.load")
        return self._add(module, item)

    def node(self, node):
        for each in topologicalOrder([node]):
            if id(each) in self.indices:
                continue
            item = {"module": self.module(each.module),
                    "parents": [[self.indices[id(parent)], index]
                                for parent, index in zip(each.parents, each.outputIndices)]}
            self._add(each, {"node": item})
        return self.indices[id(node)]

    def value(self, value, what):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, numpy.bool_):
            return bool(value)
        if isinstance(value, (int, numpy.integer)):
            return int(value)
        if isinstance(value, (float, numpy.floating)):
            return float(value)
        if isinstance(value, list):
            return [self.value(item, what) for item in value]
        if isinstance(value, tuple):
            return {"$tuple": [self.value(item, what) for item in value]}
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise Undescribable(f"{what}: a dict argument whose keys are not all strings")
            return {"$dict": {key: self.value(item, what) for key, item in value.items()}}
        if hasattr(type(value), "describeIn"):  # a Module, Node or node[i]
            return value.describeIn(self)
        if isinstance(value, numpy.dtype) or (isinstance(value, type) and issubclass(value, numpy.generic)):
            return {"$dtype": numpy.dtype(value).name}
        if isinstance(value, numpy.ndarray) or isDeviceArray(value):
            host = toHost(value)
            return {"$array": {"dtype": host.dtype.name, "shape": list(host.shape), "data": host.reshape(-1).tolist(),
                               "device": isDeviceArray(value)}}
        name = registeredName(value, FUNCTIONS)
        if name is not None:
            return {"$function": name}
        raise Undescribable(f"{what}: an argument {value!r:.60} ({type(value).__name__}) that a saved architecture "
                            "cannot hold (register a function with minidl.nn.register)")
