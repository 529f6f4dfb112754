"""The architecture of a network as JSON: what ``save`` and ``saveCheckpoint`` write beside the weights, and what
``minidl.load`` rebuilds the network from.

Every module records the arguments of its constructor when it is built (``Module.constructorArguments``;
Sequential gives its current list of modules instead). The architecture is a list of items, each built from
items before it, and the index of the network's item:

    {"version": 1, "root": 4, "items": [
        {"module": "Linear", "args": [3, 4], "kwargs": {}, "name": "inp", "dtype": "float32"},
        {"node": {"module": 0, "parents": []}},
        ...]}

A module item names a type of the registry, its positional and keyword arguments, its name, and the dtype of
its parameters when they share one (``calcMode`` is applied again when the rebuilt module's differs). A node
item names its module's item and, per parent, ``[item, output index or null]``: a module used by several
nodes (a shared module) is one item that several nodes name. Arguments are JSON, with tagged objects for the
rest: ``{"$tuple": [...]}``, ``{"$dict": {...}}``, ``{"$dtype": "float16"}``, ``{"$ref": item}`` (a module or a
node), ``{"$output": [item, index]}`` (``node[index]``), ``{"$function": "relu"}`` (a registered function),
``{"$array": {"dtype", "shape", "data", "device"}}``.

Loading never runs code from the file: types and functions are looked up in the registry (every module class
of minidl is in it; ``register`` adds a user's class or function), and anything else is refused.
A network that cannot be described (an argument of none of the kinds above, an unregistered class or function)
is still saved: its architecture entry says why it is missing, and ``minidl.load`` reports that reason.
"""

import json

import numpy

from minidl.backend import isDeviceArray, toDevice, toHost
from minidl.errors import CheckpointError, ModuleError
from minidl.nn.activationfunctions import ActivationFunction

VERSION = 1
METADATA_KEY = "architecture"
_CLASSES = {}  # name -> class
_FUNCTIONS = {}  # name -> function (the activation functions, Glue's functions a user registers)


class Undescribable(ModuleError):
    """A module or argument that the architecture's JSON cannot hold (the reason is the message)."""


def register(obj, name=None):
    """Let ``obj`` (a Module subclass, or a function a module takes as an argument) take part in saved
    architectures under ``name`` (default: its ``__qualname__``, or an activation's ``name``). Returns ``obj``, so
    it serves as a class decorator. ModuleError when the name is taken by another object."""
    if isinstance(obj, type):
        from minidl.nn.module import Module

        if not issubclass(obj, Module):
            raise ModuleError(f"register takes a Module subclass or a function, got the class {obj.__qualname__}")
        table = _CLASSES
    elif callable(obj) or isinstance(obj, ActivationFunction):
        table = _FUNCTIONS
    else:
        raise ModuleError(f"register takes a Module subclass or a function, got {type(obj).__name__}")
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


# writing


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

    def _add(self, obj, item):
        self.items.append(item)
        self.indices[id(obj)] = len(self.items) - 1
        self.keep.append(obj)
        return len(self.items) - 1

    def module(self, module):
        if id(module) in self.indices:
            return self.indices[id(module)]
        typeName = registeredName(type(module), _CLASSES)
        if typeName is None:
            raise Undescribable(f"{module!r}: its class {type(module).__qualname__} is not registered: "
                                "call minidl.nn.register on it")
        args, kwargs = module.constructorArguments()
        what = f"{module!r}"
        item = {"module": typeName, "args": [self.value(arg, what) for arg in args],
                "kwargs": {key: self.value(arg, what) for key, arg in kwargs.items()}}
        if module.name is not None:
            item["name"] = module.name
        dtypes = {var.data.dtype for var in module.getVarTable().values()}
        if len(dtypes) == 1:
            item["dtype"] = dtypes.pop().name
        if id(module) in self.indices:
            raise Undescribable(f"{module!r} is among its own constructor's arguments")
        return self._add(module, item)

    def node(self, node):
        from minidl.nn.graph import topologicalOrder

        for each in topologicalOrder([node]):
            if id(each) in self.indices:
                continue
            item = {"module": self.module(each.module),
                    "parents": [[self.indices[id(parent)], index]
                                for parent, index in zip(each.parents, each.outputIndices)]}
            self._add(each, {"node": item})
        return self.indices[id(node)]

    def value(self, value, what):
        from minidl.nn.module import Module, Node, NodeOutput

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
        if isinstance(value, Module):
            return {"$ref": self.module(value)}
        if isinstance(value, Node):
            return {"$ref": self.node(value)}
        if isinstance(value, NodeOutput):
            return {"$output": [self.node(value.node), value.index]}
        if isinstance(value, numpy.dtype) or (isinstance(value, type) and issubclass(value, numpy.generic)):
            return {"$dtype": numpy.dtype(value).name}
        if isinstance(value, numpy.ndarray) or isDeviceArray(value):
            host = toHost(value)
            return {"$array": {"dtype": host.dtype.name, "shape": list(host.shape), "data": host.reshape(-1).tolist(),
                               "device": isDeviceArray(value)}}
        name = registeredName(value, _FUNCTIONS)
        if name is not None:
            return {"$function": name}
        raise Undescribable(f"{what}: an argument {value!r:.60} ({type(value).__name__}) that a saved architecture "
                            "cannot hold (register a function with minidl.nn.register)")


# reading


def rebuild(text, path):
    """The network (fresh weights) that the architecture entry ``text`` of the file ``path`` describes.
    CheckpointError naming the cause for a missing or unreadable entry, an unknown type or function, a
    reference to an item not built before, or arguments the constructor refuses."""
    from minidl.tensorfile import parseJson

    if text is None:
        raise CheckpointError(f"{path} carries no architecture (written before minidl stored one?): build the "
                              "network in code and read the weights with module.load or loadCheckpoint")
    spec = parseJson(text, path, "architecture")
    if not isinstance(spec, dict) or spec.get("version") != VERSION:
        raise CheckpointError(f"{path}: its architecture is not a version-{VERSION} architecture of minidl")
    if "unavailable" in spec:
        raise CheckpointError(f"{path} carries no architecture, because it could not be written: "
                              f"{spec['unavailable']!s:.300}")
    items, root = spec.get("items"), spec.get("root")
    if not isinstance(items, list) or not _isIndex(root, len(items)):
        raise CheckpointError(f"{path}: its architecture has no list of items and index of the network")
    built = []
    for index, item in enumerate(items):
        built.append(_Decoder(path, built, index).item(item))
    return built[root]


def _isIndex(value, limit):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit


class _Decoder:
    def __init__(self, path, built, index):
        self.path, self.built, self.index = path, built, index

    def error(self, cause):
        return CheckpointError(f"{self.path}: item {self.index} of its architecture: {cause}")

    def ref(self, value, kinds):
        if not _isIndex(value, self.index):
            raise self.error(f"{value!r:.40} is not the index of an item before it")
        target = self.built[value]
        if not isinstance(target, kinds):
            raise self.error(f"item {value} is a {type(target).__name__}, not a {kinds[0].__name__}")
        return target

    def item(self, item):
        from minidl.nn.module import Module, Node

        if isinstance(item, dict) and set(item) == {"node"} and isinstance(item["node"], dict):
            node = item["node"]
            parents = node.get("parents")
            if not isinstance(parents, list) or not all(isinstance(p, list) and len(p) == 2 for p in parents):
                raise self.error("a node's parents must be a list of [item, output index or null]")
            picked = []
            for parent, output in parents:
                parent = self.ref(parent, (Node,))
                if output is not None and not _isIndex(output, 2**31):
                    raise self.error(f"an output index {output!r:.40} is not a non-negative integer")
                picked.append(parent if output is None else parent[output])
            return Node(self.ref(node.get("module"), (Module,)), *picked)
        if not isinstance(item, dict) or not {"module", "args", "kwargs"} <= set(item) <= {
                "module", "args", "kwargs", "name", "dtype"}:
            raise self.error("an item must be a module (type, args, kwargs[, name, dtype]) or a node")
        cls = _CLASSES.get(item["module"]) if isinstance(item["module"], str) else None
        if cls is None:
            raise self.error(f"unknown module type {item['module']!r:.80}: a custom module must be registered "
                             "(minidl.nn.register) before loading")
        if not isinstance(item["args"], list) or not isinstance(item["kwargs"], dict):
            raise self.error("args must be a list and kwargs an object")
        args = [self.value(arg) for arg in item["args"]]
        kwargs = {key: self.value(arg) for key, arg in item["kwargs"].items()}
        if not isinstance(item.get("name", ""), str):
            raise self.error(f"a module's name must be a string, got {item['name']!r:.40}")
        try:
            module = cls(*args, **kwargs)
            if item.get("name") is not None:
                module.name = item["name"]
            if "dtype" in item:
                dtype = numpy.dtype(_dtype(item["dtype"]))
                if {var.data.dtype for var in module.getVarTable().values()} != {dtype}:
                    module.calcMode(dtype)
        except Exception as error:  # a constructor given a forged file's arguments: whatever it raises, say so
            raise self.error(f"{item['module']} refuses its arguments: {type(error).__name__}: {error}") from error
        return module

    def value(self, value):
        from minidl.nn.module import Module, Node

        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, list):
            return [self.value(each) for each in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise self.error(f"an argument {value!r:.60} is neither JSON nor one tagged object")
        (tag, content), = value.items()
        if tag == "$tuple" and isinstance(content, list):
            return tuple(self.value(each) for each in content)
        if tag == "$dict" and isinstance(content, dict):
            return {key: self.value(each) for key, each in content.items()}
        if tag == "$ref":
            return self.ref(content, (Module, Node))
        if tag == "$output" and isinstance(content, list) and len(content) == 2 and _isIndex(content[1], 2**31):
            return self.ref(content[0], (Node,))[content[1]]
        if tag == "$dtype":
            return _dtype(content, self.error)
        if tag == "$function":
            if content not in _FUNCTIONS:
                raise self.error(f"unknown function {content!r:.80}: register it (minidl.nn.register) before loading")
            return _FUNCTIONS[content]
        if tag == "$array" and isinstance(content, dict) and set(content) == {"dtype", "shape", "data", "device"}:
            dtype = _dtype(content["dtype"], self.error)
            try:
                array = numpy.array(content["data"], dtype=dtype).reshape(content["shape"])
            except (TypeError, ValueError) as error:
                raise self.error(f"an array argument does not fit its dtype and shape: {error}") from None
            return toDevice(array) if content["device"] else array
        raise self.error(f"an argument tagged {tag!r:.40} that minidl does not read")


def _dtype(name, error=None):
    """The numpy dtype named ``name``, if it is a number or bool dtype."""
    if isinstance(name, str) and name in ("bool", "float16", "float32", "float64", "int8", "int16", "int32",
                                          "int64", "uint8", "uint16", "uint32", "uint64"):
        return numpy.dtype(name).type
    cause = f"{name!r:.40} is not a dtype minidl reads"
    raise (error(cause) if error else ModuleError(cause))


def _registerActivations():
    from minidl.nn import activationfunctions

    for value in vars(activationfunctions).values():
        if isinstance(value, ActivationFunction):
            register(value)


_registerActivations()
