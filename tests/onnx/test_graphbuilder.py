"""GraphBuilder's names are unique, whatever hints come."""

from minidl.onnx.graphbuilder import GraphBuilder


def test_names_never_repeat():
    builder = GraphBuilder()
    names = [builder.fresh(hint) for hint in ("W", "W", "W_1", "W", "W_2", "b")]
    assert names == ["W", "W_1", "W_1_1", "W_2", "W_2_1", "b"]
