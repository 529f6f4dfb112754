"""Rebuilding a network from its saved architecture (the JSON ``minidl.nn.architecture`` writes), and ``register``,
which lets a user's class or function take part in it. Types and functions are looked up in the registry
(``minidl.nn.registry``), never imported or run from the file."""

import numpy

from minidl.backend import toDevice
from minidl.errors import CheckpointError, ModuleError
from minidl.nn.activationfunctions import ActivationFunction
from minidl.nn.architecture import VERSION
from minidl.nn.module import Module, Node
from minidl.nn.registry import CLASSES, FUNCTIONS, enter
from minidl.tensorfile import parseJson


def register(obj, name=None):
    """Let ``obj`` (a Module subclass, or a function a module takes as an argument) take part in saved
    architectures under ``name`` (default: its ``__qualname__``, or an activation's ``name``). Returns ``obj``, so
    it serves as a class decorator. ModuleError when the name is taken by another object."""
    if isinstance(obj, type):
        if not issubclass(obj, Module):
            raise ModuleError(f"register takes a Module subclass or a function, got the class {obj.__qualname__}")
        table = CLASSES
    elif callable(obj) or isinstance(obj, ActivationFunction):
        table = FUNCTIONS
    else:
        raise ModuleError(f"register takes a Module subclass or a function, got {type(obj).__name__}")
    return enter(table, obj, name)


def rebuild(text, path):
    """The network (fresh weights) that the architecture entry ``text`` of the file ``path`` describes.
    CheckpointError naming the cause for a missing or unreadable entry, an unknown type or function, a
    reference to an item not built before, or arguments the constructor refuses."""
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
        cls = CLASSES.get(item["module"]) if isinstance(item["module"], str) else None
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
                if module.stateDtypes() != {dtype}:
                    module.calcMode(dtype)
        except Exception as error:  # a constructor given a forged file's arguments: whatever it raises, say so
            raise self.error(f"{item['module']} refuses its arguments: {type(error).__name__}: {error}") from error
        return module

    def value(self, value):
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
            if content not in FUNCTIONS:
                raise self.error(f"unknown function {content!r:.80}: register it (minidl.nn.register) before loading")
            return FUNCTIONS[content]
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
