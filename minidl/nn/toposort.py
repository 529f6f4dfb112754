"""topologicalOrder: the nodes of a graph, each after its parents (what Graph runs in and what the saved
architecture lists). It reads only a node's ``parents``, so that both can use it without importing each other."""

from minidl.errors import ModuleError


def topologicalOrder(outputs):
    """The nodes that the outputs depend on, each after all its parents; ModuleError on a cycle.

    A depth-first walk with an explicit stack (deep graphs would overflow Python's recursion): a node is
    placed once all its parents are, and meeting a node that is still on the walk's path is a cycle."""
    order, done, onPath = [], set(), set()
    for output in outputs:
        if id(output) in done:
            continue
        path, stack = [output], [iter(output.parents)]
        onPath.add(id(output))
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                node = path.pop()
                stack.pop()
                onPath.discard(id(node))
                done.add(id(node))
                order.append(node)
            elif id(parent) in onPath:
                cycle = path[path.index(parent):] + [parent]
                raise ModuleError("the graph has a cycle: " + " -> ".join(repr(n) for n in reversed(cycle)))
            elif id(parent) not in done:
                path.append(parent)
                stack.append(iter(parent.parents))
                onPath.add(id(parent))
    return order
