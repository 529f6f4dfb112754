"""Containers as people write them: Sequential from modules or a list, the module tree, the summary, and a
picture of a Graph."""

import os
import stat

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import toDevice, toHost
from minidl.nn import Activation, Add, BatchNorm, Dropout, Graph, Linear, Parallel, Sequential, Split, relu, tanh


def test_sequential_takes_modules_or_one_list_of_them_and_a_keyword_name():
    layers = [Linear(3, 4), Activation(relu), Linear(4, 2)]
    spread, listed = Sequential(*layers), Sequential(layers, name="net")
    assert spread.modules == layers and listed.modules == layers and listed.name == "net"
    assert spread.numOfParams() == 3 * 4 + 4 + 4 * 2 + 2
    data = toDevice(numpy.ones((5, 3), numpy.float32))
    numpy.testing.assert_array_equal(toHost(spread(data)), toHost(listed(data)))


@pytest.mark.parametrize("args, kwargs, complaint", [
    ((Linear(2, 2), "relu"), {}, "got str at position 1"),
    (([Linear(2, 2), 3],), {}, "got int at position 1"),
    ((), {"name": ["a"]}, "name must be a string or None, got list"),
])
def test_sequential_refuses_what_is_not_a_module_or_a_name(args, kwargs, complaint):
    with pytest.raises(ModuleError, match=complaint):
        Sequential(*args, **kwargs)


@pytest.mark.parametrize("container", [Sequential, Parallel])
@pytest.mark.parametrize("more, complaint", [
    (lambda: [Linear(2, 2), "relu"], "can only append a Module, got str"),
    (lambda: [Linear(2, 2, name="a"), Linear(2, 2, name="a")], "both named 'a'"),
])
def test_extend_refuses_a_list_before_appending_any_of_it(container, more, complaint):
    net = container(Linear(2, 2))
    with pytest.raises(ModuleError, match=complaint):
        net.extend(more())
    assert len(net) == 1  # none of the list (the modules before the bad one were appended, and stayed)


def test_any_module_refuses_a_name_that_is_not_a_string():
    with pytest.raises(ModuleError, match="Linear: name must be a string or None, got int"):
        Linear(2, 2, name=7)


def test_print_shows_the_module_tree_with_parameter_shapes():
    net = Sequential(Linear(3, 4), Activation(relu), Sequential(Linear(4, 2), name="head"))
    assert str(net) == "\n".join([
        "Sequential",
        "├─ 0: Linear  W float32 (3, 4), b float32 (4,)",
        "├─ 1: Activation(relu)",
        "└─ head: Sequential 'head'",
        "   └─ 0: Linear  W float32 (4, 2), b float32 (2,)",
    ])
    assert repr(net) == "Sequential"  # error messages keep the short form


def test_summary_gives_each_output_shape_and_parameter_count_and_the_total(capsys):
    net = Sequential(Linear(3, 4), BatchNorm(4), Dropout(0.5), Sequential(Linear(4, 2), name="head"))
    net.trainMode()
    net[2].evalMode()
    text = net.summary((6, 3))
    assert capsys.readouterr().out.strip() == text
    rows = [line.split() for line in text.splitlines()]
    assert ["0", "Linear", "(6,", "4)", "16"] in rows
    assert ["1", "BatchNorm", "(6,", "4)", "8"] in rows
    assert ["head.0", "Linear", "(6,", "2)", "10"] in rows
    assert text.splitlines()[-1] == "total parameters: 34"
    assert [module.train for module in net.walk()] == [True, True, True, False, True, True]  # modes put back


def test_summary_of_a_graph_counts_a_shared_module_once_and_lists_every_use():
    shared = Linear(2, 2)
    inp = Linear(4, 2).node()
    out = Add().node(shared.node(inp), shared.node(Activation(tanh).node(inp)))
    text = Graph(inputs=inp, outputs=out).summary((3, 4))
    counts = [line.split()[-1] for line in text.splitlines() if line.split()[1:2] == ["Linear"]]
    assert counts == ["10", "6", "0"]  # the input Linear, then the shared one's two uses
    assert text.splitlines()[-1] == "total parameters: 16"


def test_summary_refuses_a_shape_that_is_not_a_tuple_of_positive_ints():
    with pytest.raises(ModuleError, match="inputShape must be a tuple of positive ints"):
        Linear(3, 4).summary([3, 0])


def _splitGraph():
    inp = Linear(4, 4).node()
    split = Split(axis=1, sections=(2, 2)).node(inp)
    out = Add().node(Activation(relu).node(split[0]), split[1])
    return Graph(inputs=inp, outputs=out)


def test_the_dot_text_has_a_box_per_node_and_an_arrow_per_parent():
    text = _splitGraph().toDot()
    assert text.startswith('digraph "Graph" {') and text.rstrip().endswith("}")
    assert 'n0 [label="Linear\\n(input)"' in text and 'n3 [label="Add\\n(output)"' in text
    arrows = sorted(line.strip() for line in text.splitlines() if "->" in line)
    assert arrows == ["n0 -> n1;", 'n1 -> n2 [label="[0]"];', 'n1 -> n3 [label="[1]"];', "n2 -> n3;"]


def _fakeDot(folder):
    """A stand-in for Graphviz's dot that records its arguments and writes its input to the -o file."""
    script = folder / "dot"
    script.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nwhile [ "$1" != "-o" ]; do shift; done\n'
                      'cat > "$2"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_draw_runs_dot_for_a_picture(tmp_path, monkeypatch):
    _fakeDot(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    graph = _splitGraph()
    written = graph.draw(tmp_path / "net.svg")
    assert written == str(tmp_path / "net.svg")
    assert (tmp_path / "args").read_text().split() == ["-Tsvg", "-o", written]
    assert (tmp_path / "net.svg").read_text() == graph.toDot()


def test_draw_without_dot_writes_the_dot_text_and_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    graph = _splitGraph()
    with pytest.warns(UserWarning, match="dot is not on the PATH"):
        written = graph.draw(tmp_path / "net.png")
    assert written == str(tmp_path / "net.dot") and not (tmp_path / "net.png").exists()
    assert (tmp_path / "net.dot").read_text() == graph.toDot()
    with pytest.raises(ModuleError, match="file type must be one of .dot, .svg, .png"):
        graph.draw(tmp_path / "net.jpg")


@pytest.mark.skipif(not any(os.access(os.path.join(folder, "dot"), os.X_OK)
                            for folder in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="Graphviz's dot is not installed")
def test_draw_with_graphviz_makes_an_svg(tmp_path):
    written = _splitGraph().draw(tmp_path / "net.svg")
    assert "<svg" in open(written).read()
