"""PyTorch state dicts in and out: ``loadTorchStateDict(module, source, match="name")`` and
``saveTorchStateDict(module, path)``.

By name (the default), each minidl layer that holds arrays takes the entries named by its qualified name in
minidl (``0``, ``fc1``, ``encoder.3``) followed by its PyTorch names (``0.weight``, ``0.bias``); every entry must
be taken. By order (``match="order"``, when the PyTorch network names its modules otherwise), minidl's layers
that hold arrays (in the order of ``getVarTable()`` and ``getBufferTable()``: containers' children in order)
take the state dict's entries in its order, each layer the group of entries under the prefix of the next entry
(``features.0.weight``, ``features.0.bias``... for prefix ``features.0``; PyTorch names with a dot, such as
attention's ``out_proj.weight``, belong to the group too); a dict keeps its order; a safetensors file does not
(its writer sorts the tensors), so a file's entries are taken in natural order of their prefixes (``2`` before
``10``), which is the order of ``nn.Sequential`` and ``nn.ModuleList``. Within a group the names and layouts
follow ``minidl.interop.torchlayouts``.

``saveTorchStateDict`` names each group by the layer's qualified name in minidl (``0``, ``fc1``, ``3.1``), so
the file loads into a PyTorch network whose modules sit at the same places (``nn.Sequential`` with the same
layers, activations included).
"""

import os

import numpy

from minidl.backend import toHost, xp
from minidl.errors import CheckpointError, MinidlError
from minidl.interop.torchlayouts import IGNORED, LAYOUTS
from minidl.nn.container import Container
from minidl.nn.module import Module
from minidl.tensorfile import TensorFile, writeTensors

TORCH_STATE_FORMAT = "minidl.torch_state_dict"


def layersOf(module):
    """``(qualified name, layer)`` for each layer holding parameters or buffers, in getVarTable() order,
    each layer once; CheckpointError for one whose PyTorch layout minidl does not know."""
    if not isinstance(module, Module):
        raise CheckpointError(f"expected a minidl Module, got {type(module).__name__}")
    found, seen = [], set()

    def visit(current, name):
        if id(current) in seen:
            return
        seen.add(id(current))
        if isinstance(current, Container):
            for childName, child in current.children().items():
                visit(child, f"{name}.{childName}" if name else childName)
        elif current.getVarTable() or current.getBufferTable():
            if type(current) not in LAYOUTS:
                known = sorted(layerType.__name__ for layerType in LAYOUTS)
                raise CheckpointError(f"{current!r} ({type(current).__name__}) at {name or 'the top'!r}: no PyTorch "
                                      f"state dict layout is known for it; known: {known}")
            found.append((name, current))

    visit(module, "")
    return found


def _naturalKey(prefix):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in prefix.split(".")]


class _Source:
    """A state dict's entries before any tensor is read: ``names`` (in the order the order matching uses) and
    ``header`` (name -> (dtype, shape)); ``read()`` gives every tensor (name -> host array). A file's header is
    read and checked first (minidl.tensorfile), its tensors only by ``read()``."""

    def __init__(self, source):
        if isinstance(source, dict):
            for name, array in source.items():
                if not isinstance(name, str) or not isinstance(array, numpy.ndarray):
                    raise CheckpointError(f"a state dict maps names to NumPy arrays, got {name!r}: "
                                          f"{type(array).__name__}")
            self.arrays, self.file = source, None
            self.names = list(source)
            self.header = {name: (array.dtype, array.shape) for name, array in source.items()}
            return
        if not isinstance(source, (str, os.PathLike)):
            raise CheckpointError(f"source must be a safetensors file path or a dict of NumPy arrays, got "
                                  f"{type(source).__name__}")
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise CheckpointError(f"no state dict file at {path}")
        self.file = TensorFile(path, None)
        self.names = sorted(self.file.entries, key=lambda name: _naturalKey(name.rpartition(".")[0]))
        self.header = {name: (dtype, shape) for name, (dtype, shape, _, _) in self.file.entries.items()}

    def read(self):
        if self.file is None:
            return self.arrays
        return self.file.read()

    def close(self):
        if self.file is not None:
            self.file.__exit__(None, None, None)


def _torchNames(layer):
    return [torchName for torchName, _, _ in LAYOUTS[type(layer)](layer)] + list(IGNORED.get(type(layer), ()))


def _member(name, start, names):
    """The entry's name within the group of prefix ``start`` (``"features.0."``), or None for another layer's:
    a name directly under the prefix, or one of the layer's dotted names (``out_proj.weight``)."""
    rest = name[len(start):] if name.startswith(start) else None
    return rest if rest is not None and ("." not in rest or rest in names) else None


def _groupsByName(layers, entries):
    """``(prefix, {torch name: entry name})`` for each layer: the entries under the layer's qualified name."""
    groups, remaining = [], list(entries)
    for qualified, layer in layers:
        names, start = _torchNames(layer), f"{qualified}." if qualified else ""
        taken = {_member(name, start, names): name for name in remaining if _member(name, start, names) is not None}
        if not taken:
            prefixes = sorted({name.rpartition(".")[0] for name in remaining}, key=_naturalKey)
            raise CheckpointError(f"nothing for {layer!r} at {qualified or 'the top'!r}: the state dict has no tensors "
                                  f"named {start}<name>; its other prefixes are {prefixes[:8]} (names must be "
                                  "minidl's layer names; pass match='order' to pair layers by position instead)")
        remaining = [name for name in remaining if name not in taken.values()]
        groups.append((qualified, taken))
    return groups, remaining


def _groupsByOrder(layers, entries):
    """``(prefix, {torch name: entry name})`` for each layer in turn: the group of the next entry's prefix (its
    name less one of the layer's PyTorch names)."""
    groups, remaining = [], list(entries)
    for position, (qualified, layer) in enumerate(layers):
        if not remaining:
            raise CheckpointError(f"the state dict has tensors for {position} layers, minidl's network has "
                                  f"{len(layers)}: nothing for {layer!r} at {qualified!r}")
        names, first = _torchNames(layer), remaining[0]
        prefix = next((first[:-len(name)].rstrip(".") for name in names
                       if first == name or first.endswith("." + name)), first.rpartition(".")[0])
        start = f"{prefix}." if prefix else ""
        taken = {_member(name, start, names): name for name in remaining if _member(name, start, names) is not None}
        remaining = [name for name in remaining if name not in taken.values()]
        groups.append((prefix, taken))
    return groups, remaining


MATCHES = {"name": _groupsByName, "order": _groupsByOrder}


def loadTorchStateDict(module, source, match="name"):
    """Copy a PyTorch state dict (a safetensors file written from ``state_dict()``, or a dict of NumPy arrays)
    into ``module``'s parameters and buffers, in place; returns the module.

    ``match="name"``: each minidl layer takes the entries named ``<its qualified name>.<PyTorch name>`` (the
    names ``saveTorchStateDict`` writes, and those of a PyTorch network whose modules sit at the same places);
    ``match="order"``: the layers take the state dict's groups in order (see the module docstring).

    A file's header is read and checked first: names, shapes (after the layout conversion) and dtypes are
    compared before any tensor is read; then the values are checked as ``loadCheckpoint`` checks them (a
    BatchNorm's running variance finite and >= 0, its mean finite). CheckpointError naming the first mismatch
    (a layer without a counterpart, other names, a shape, a dtype, a value), with every array of the module
    unchanged.
    """
    layers = layersOf(module)
    if match not in MATCHES:
        raise CheckpointError(f"match must be one of {sorted(MATCHES)}, got {match!r}")
    source = _Source(source)
    try:
        groups, remaining = MATCHES[match](layers, source.names)
        if remaining:
            raise CheckpointError(f"the state dict has tensors no layer of minidl's network ({len(layers)} with "
                                  f"tensors) takes: {remaining[:4]}")
        plan = [pair for (name, layer), (prefix, taken) in zip(layers, groups)
                for pair in _matchLayer(name, layer, prefix, taken, source.header)]
        arrays = source.read()
    finally:
        source.close()
    converted = {}
    for layer, target, entry, conversion in plan:
        converted.setdefault(id(layer), (layer, {}))[1][id(target)] = conversion(arrays[entry])
    for layer, values in converted.values():
        local = {name: values[id(array)] for name, array in layer.getArrayTable().items() if id(array) in values}
        try:
            layer.checkBufferValues(local)
        except MinidlError as error:
            raise CheckpointError(f"the state dict's values for {layer!r}: {error}") from error
    for layer, target, _, _ in plan:
        target[...] = xp.asarray(converted[id(layer)][1][id(target)])
    return module


def _matchLayer(name, layer, prefix, taken, header):
    """(layer, minidl array, entry name, conversion) for each of one layer's arrays, checked against the header;
    CheckpointError on any mismatch. Reads no tensor."""
    entries = LAYOUTS[type(layer)](layer)
    expected = [torchName for torchName, _, _ in entries]
    given = [torchName for torchName in taken if torchName not in IGNORED.get(type(layer), ())]
    where = f"{layer!r} at {name or 'the top'!r} against the state dict's {prefix or 'top'!r}"
    if sorted(given) != sorted(expected):
        raise CheckpointError(f"{where}: expected the tensors {expected}, got {given}")
    plan = []
    for torchName, target, conversion in entries:
        entry = taken[torchName]
        dtype, shape = header[entry]
        converted = conversion(numpy.broadcast_to(numpy.zeros((), dtype), shape)).shape  # a view: reads nothing
        if converted != target.shape or dtype != target.dtype:
            raise CheckpointError(f"{where}: {entry!r} is {dtype} {tuple(shape)}, which is {converted} in minidl's "
                                  f"layout; expected {target.dtype} {target.shape}")
        plan.append((layer, target, entry, conversion))
    return plan


def saveTorchStateDict(module, path):
    """Write ``module``'s parameters and buffers as a PyTorch state dict in a safetensors file (PyTorch's
    layouts, names ``<minidl layer name>.<PyTorch name>``), atomically; ``safetensors.torch.load_file`` and
    ``load_state_dict`` read it."""
    tensors = {}
    for name, layer in layersOf(module):
        for torchName, array, conversion in LAYOUTS[type(layer)](layer):
            tensors[f"{name}.{torchName}" if name else torchName] = numpy.ascontiguousarray(conversion(toHost(array)))
    writeTensors(path, tensors, {"format": TORCH_STATE_FORMAT})


