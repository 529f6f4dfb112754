"""The package's modules import one another without a circle: parsed from the sources (imports inside functions
included), so that a lazy import cannot hide one."""

import ast
import pathlib

import minidl

ROOT = pathlib.Path(minidl.__file__).parent


def moduleName(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def importedBy(path, modules):
    """The package's modules that ``path`` imports anywhere in its text (a ``from P import name`` counts P.name
    when that is a module, else P)."""
    name = moduleName(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in found if target in modules and target != name}


def importGraph():
    paths = {moduleName(path): path for path in ROOT.rglob("*.py")}
    return {name: importedBy(path, paths) for name, path in paths.items()}


def cycles(graph):
    """Every strongly connected component of more than one module (Tarjan's algorithm), each sorted."""
    index, low, stack, onStack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in onStack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_package():
    graph = importGraph()
    assert "minidl.nn.module" in graph and graph["minidl.nn.sequential"]
    assert {"minidl.nn.architecture", "minidl.nn.registry"} <= graph["minidl.nn.module"]
    assert cycles(graph) == []
