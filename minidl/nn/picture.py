"""A picture of a Graph: its DOT text (Graphviz's language), drawn by Graphviz's ``dot`` when it is installed."""

import os
import shutil
import subprocess
import warnings

from minidl.atomicfile import writeAtomically
from minidl.errors import ModuleError

FORMATS = ("dot", "svg", "png")


def _quote(text):
    """A DOT string literal: backslashes and quotes escaped, line breaks as DOT's centred \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graphToDot(graph):
    """DOT text with a box per node (inputs and outputs highlighted) and an arrow per parent."""
    number = {id(node): index for index, node in enumerate(graph.nodes)}
    inputs = {id(node) for node in graph.inputs}
    outputs = {id(node) for node in graph.outputs}
    lines = [f"digraph {_quote(repr(graph))} {{", "  rankdir=TB;", "  node [shape=box, fontname=Helvetica];"]
    for node in graph.nodes:
        style = ""
        if id(node) in inputs or id(node) in outputs:
            role = "input" if id(node) in inputs else "output"
            style = ', style=filled, fillcolor="#dde8f8"'
            label = f"{node.module!r}\n({role})"
        else:
            label = repr(node.module)
        lines.append(f"  n{number[id(node)]} [label={_quote(label)}{style}];")
    for node in graph.nodes:
        for parent, index in zip(node.parents, node.outputIndices):
            edge = f' [label="[{index}]"]' if index is not None else ""
            lines.append(f"  n{number[id(parent)]} -> n{number[id(node)]}{edge};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def drawGraph(graph, path):
    """Write ``graph`` to ``path`` as DOT text (``.dot``) or, through ``dot``, as ``.svg``/``.png``; without
    ``dot`` on the PATH, write the DOT text to ``<path without suffix>.dot`` and warn. Returns the path written."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in FORMATS:
        raise ModuleError(f"draw: the picture's file type must be one of {', '.join('.' + f for f in FORMATS)}, "
                          f"got {path!r}")
    text = graphToDot(graph)
    program = shutil.which("dot")
    if suffix != "dot" and program is None:
        fallback = os.path.splitext(path)[0] + ".dot"
        warnings.warn(f"Graphviz's dot is not on the PATH, so {path} cannot be drawn; wrote the DOT text to "
                      f"{fallback} instead (install graphviz, e.g. apt-get install graphviz)", stacklevel=3)
        path, suffix = fallback, "dot"
    if suffix == "dot":
        writeAtomically(path, text.encode(), ModuleError)
        return path
    result = subprocess.run([program, f"-T{suffix}", "-o", path], input=text, text=True, capture_output=True)
    if result.returncode != 0:
        raise ModuleError(f"draw: dot failed on {path}: {result.stderr.strip()}")
    return path
