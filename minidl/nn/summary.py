"""The text views of a network: ``str(module)`` (the module tree) and ``module.summary(inputShape)`` (each
module's output shape and parameter count, for one forward pass). A module with children (``children()``) is a
container; this file imports no module class, so ``Module`` can use it."""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError


def _params(module):
    return ", ".join(f"{name} {var.data.dtype} {tuple(var.data.shape)}" for name, var in module.vars.items())


def moduleTree(module, indent=""):
    """``repr(module)`` and its parameters, then each child on its own line below it, indented."""
    params = _params(module)
    lines = [f"{module!r}" + (f"  {params}" if params else "")]
    children = list(module.children().items())
    for position, (name, child) in enumerate(children):
        last = position == len(children) - 1
        branch, below = ("└─ ", "   ") if last else ("├─ ", "│  ")
        subtree = moduleTree(child, indent + below).split("\n")
        lines.append(f"{indent}{branch}{name}: {subtree[0]}")
        lines.extend(subtree[1:])
    return "\n".join(lines)


def _shape(data):
    if isinstance(data, (list, tuple)):
        return "[" + ", ".join(_shape(item) for item in data) + "]"
    return str(tuple(data.shape))


def zerosOfShape(inputShape, dtype):
    """Zeros of ``inputShape`` on the device, or a list of them for a list of shapes."""
    if isinstance(inputShape, list):
        return [zerosOfShape(shape, dtype) for shape in inputShape]
    if not isinstance(inputShape, tuple) or not all(
        isinstance(size, (int, numpy.integer)) and not isinstance(size, bool) and size > 0 for size in inputShape
    ):
        raise ModuleError(f"summary: inputShape must be a tuple of positive ints (batch axis included), or a list "
                          f"of them for several inputs, got {inputShape!r}")
    return xp.zeros(inputShape, dtype=dtype)


def _rows(container, prefix, seen):
    """(qualified name, repr, output shape, new parameters) per use of a child in the last forward pass."""
    rows = []
    for name, module, cache in container.uses():
        qualified = f"{prefix}{name}"
        if module.children():
            saved = module.saveCache()
            module.restoreCache(cache)
            rows.append((qualified, repr(module), _shape(cache["data"]), 0))
            rows.extend(_rows(module, qualified + ".", seen))
            module.restoreCache(saved)
            continue
        fresh = [var for var in module.vars.values() if id(var) not in seen]
        seen.update(id(var) for var in fresh)
        rows.append((qualified, repr(module), _shape(cache["data"]), sum(int(var.data.size) for var in fresh)))
    return rows


def summaryTable(module, data, output):
    """The summary table of ``module`` after the forward pass from ``data`` to ``output`` (see
    ``Module.summary``)."""
    if module.children():
        rows = _rows(module, "", set())
    else:
        rows = [("", repr(module), _shape(output), module.numOfParams())]
    header = ("name", "module", "output shape", "parameters")
    table = [header] + [(name, kind, shape, f"{count:,}") for name, kind, shape, count in rows]
    widths = [max(len(row[column]) for row in table) for column in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d:>12}" for a, b, c, d in table]
    rule = "-" * len(lines[0])
    total = module.numOfParams()
    return "\n".join([f"{module!r}: input {_shape(data)}", rule, lines[0], rule, *lines[1:], rule,
                      f"total parameters: {total:,}"])
