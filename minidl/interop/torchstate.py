"""PyTorch state dicts in and out: ``loadTorchStateDict(module, source)`` and ``saveTorchStateDict(module, path)``.

A state dict is read layer by layer: minidl's layers that hold arrays (in the order of ``getVarTable()`` and
``getBufferTable()``: containers' children in order) take the state dict's entries in its order, each layer the
group of entries under the prefix of the next entry (``features.0.weight``, ``features.0.bias``... for prefix
``features.0``; PyTorch names with a dot, such as attention's ``out_proj.weight``, belong to the group too);
within a group the names and layouts follow ``minidl.interop.torchlayouts``. A dict keeps its order; a
safetensors file does not (its writer sorts the tensors), so a file's entries are taken in natural order of
their prefixes (``2`` before ``10``), which is the order of ``nn.Sequential`` and ``nn.ModuleList``.

``saveTorchStateDict`` names each group by the layer's qualified name in minidl (``0``, ``fc1``, ``3.1``), so
the file loads into a PyTorch network whose modules sit at the same places (``nn.Sequential`` with the same
layers, activations included).
"""

import os

import numpy
from safetensors import SafetensorError, safe_open

from minidl.backend import toHost, xp
from minidl.errors import CheckpointError
from minidl.interop.torchlayouts import IGNORED, LAYOUTS
from minidl.nn.container import Container
from minidl.nn.module import Module
from minidl.tensorfile import writeTensors

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


def _readSource(source):
    """The state dict as a list of (name, host array) in the order the matching uses."""
    if isinstance(source, dict):
        for name, array in source.items():
            if not isinstance(name, str) or not isinstance(array, numpy.ndarray):
                raise CheckpointError(f"a state dict maps names to NumPy arrays, got {name!r}: {type(array).__name__}")
        return list(source.items())
    if not isinstance(source, (str, os.PathLike)):
        raise CheckpointError(f"source must be a safetensors file path or a dict of NumPy arrays, got "
                              f"{type(source).__name__}")
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise CheckpointError(f"no state dict file at {path}")
    try:
        with safe_open(path, framework="numpy") as file:
            entries = [(name, file.get_tensor(name)) for name in file.keys()]
    except (SafetensorError, OSError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} is not a safetensors file NumPy can read: {error}") from error
    return sorted(entries, key=lambda entry: _naturalKey(entry[0].rpartition(".")[0]))


def _takeGroup(entries, layer):
    """``(prefix, {torch name: array})``: the layer's tensors among ``entries`` (taken out of the list), found
    from the first entry: its prefix is what precedes one of the layer's PyTorch names (``features.0`` of
    ``features.0.weight``); the group holds every entry directly under that prefix, and the layer's dotted names
    (``out_proj.weight``) under it."""
    names = [torchName for torchName, _, _ in LAYOUTS[type(layer)](layer)] + list(IGNORED.get(type(layer), ()))
    first = entries[0][0]
    prefix = next((first[:-len(name)].rstrip(".") for name in names
                   if first == name or first.endswith("." + name)), first.rpartition(".")[0])
    start = f"{prefix}." if prefix else ""

    def member(name):
        """The entry's name within the group, or None for an entry of another layer."""
        rest = name[len(start):] if name.startswith(start) else None
        return rest if rest is not None and ("." not in rest or rest in names) else None

    taken = {member(name): array for name, array in entries if member(name) is not None}
    entries[:] = [(name, array) for name, array in entries if member(name) is None]
    return prefix, taken


def loadTorchStateDict(module, source):
    """Copy a PyTorch state dict (a safetensors file written from ``state_dict()``, or a dict of NumPy arrays)
    into ``module``'s parameters and buffers, in place; returns the module.

    CheckpointError naming the first mismatch (a layer without a counterpart, other names, a shape after the
    layout conversion, a dtype), with every array of the module unchanged.
    """
    layers = layersOf(module)
    entries = _readSource(source)
    copies = []
    for position, (name, layer) in enumerate(layers):
        if not entries:
            raise CheckpointError(f"the state dict has tensors for {position} layers, minidl's network has "
                                  f"{len(layers)}: nothing for {layer!r} at {name!r}")
        prefix, tensors = _takeGroup(entries, layer)
        copies.extend(_matchLayer(name, layer, prefix, tensors))
    if entries:
        raise CheckpointError(f"the state dict has more layers than minidl's network ({len(layers)} with tensors): "
                              f"nothing takes {[name for name, _ in entries[:4]]}")
    for target, array in copies:
        target[...] = xp.asarray(array)
    return module


def _matchLayer(name, layer, prefix, tensors):
    """(minidl array, converted host array) pairs for one layer; CheckpointError on any mismatch."""
    entries = LAYOUTS[type(layer)](layer)
    expected = [torchName for torchName, _, _ in entries]
    given = [torchName for torchName in tensors if torchName not in IGNORED.get(type(layer), ())]
    where = f"{layer!r} at {name or 'the top'!r} against the state dict's {prefix or 'top'!r}"
    if sorted(given) != sorted(expected):
        raise CheckpointError(f"{where}: expected the tensors {expected}, got {given}")
    pairs = []
    for torchName, target, conversion in entries:
        found = tensors[torchName]
        converted = conversion(found)
        entry = f"{prefix}.{torchName}" if prefix else torchName
        if converted.shape != target.shape or found.dtype != target.dtype:
            raise CheckpointError(f"{where}: {entry!r} is {found.dtype} {found.shape}, which is "
                                  f"{converted.shape} in minidl's layout; expected {target.dtype} {target.shape}")
        pairs.append((target, converted))
    return pairs


def saveTorchStateDict(module, path):
    """Write ``module``'s parameters and buffers as a PyTorch state dict in a safetensors file (PyTorch's
    layouts, names ``<minidl layer name>.<PyTorch name>``), atomically; ``safetensors.torch.load_file`` and
    ``load_state_dict`` read it."""
    tensors = {}
    for name, layer in layersOf(module):
        for torchName, array, conversion in LAYOUTS[type(layer)](layer):
            tensors[f"{name}.{torchName}" if name else torchName] = numpy.ascontiguousarray(conversion(toHost(array)))
    writeTensors(path, tensors, {"format": TORCH_STATE_FORMAT})


