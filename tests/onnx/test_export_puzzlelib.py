"""The ONNX exporters of Slice, Tile, Replicate, Sum, MulAddConst, MoveAxis, DepthConcat, ToList, GroupLinear and
Parallel, run in ONNX Runtime at another batch size; Glue (a user's Python functions) is refused by name."""

import numpy
import pytest

from minidl.backend import toDevice
from minidl.errors import ExportError
from minidl.nn import (
    Activation,
    Concat,
    DepthConcat,
    Glue,
    Graph,
    GroupLinear,
    Identity,
    Linear,
    MoveAxis,
    MulAddConst,
    Parallel,
    Replicate,
    Slice,
    Sum,
    Tile,
    ToList,
    relu,
)
from tests.onnx.onnxcheck import checkExport


def rand(*shape):
    return numpy.random.default_rng(sum(shape)).standard_normal(shape).astype(numpy.float32)


CASES = {
    "slice": (lambda: Slice()[:, 1:-1, ::2], [(2, 5, 6)]),
    "slice-reversed": (lambda: Slice((slice(None), slice(None, None, -2))), [(2, 5)]),
    "tile": (lambda: Tile(axis=1, times=3), [(2, 3, 2)]),
    "replicate": (lambda: Replicate(2), [(2, 4)]),
    "sum": (lambda: Sum(axis=1, useWeights=False), [(2, 4, 5)]),
    "sum-weighted": (lambda: Sum(axis=1), [(2, 4, 5), (2, 4)]),
    "muladdconst": (lambda: MulAddConst(a=-2.5, b=0.75), [(2, 4)]),
    "moveaxis": (lambda: MoveAxis(1, 3), [(2, 3, 4, 5)]),
    "depthconcat": (lambda: DepthConcat(), [(2, 3, 2, 2), (2, 2, 6, 6), (2, 1, 5, 3)]),
    "grouplinear": (lambda: GroupLinear(3, 4, 2), [(2, 3, 4)]),
    "grouplinear-one-input": (lambda: GroupLinear(3, 4, 2, inmode="one"), [(2, 1, 4)]),
    "grouplinear-one-weight": (lambda: GroupLinear(None, 4, 2, wmode="one"), [(2, 5, 4)]),
    "parallel": (lambda: Parallel(Linear(3, 2), Activation(relu)), [(2, 3), (2, 4)]),
    "tolist": (lambda: ToList(), [(2, 3), (2, 4)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_runs_in_onnx_runtime(tmp_path, name):
    build, shapes = CASES[name]
    module = build()
    for var in module.getVarTable().values():
        var.set(var.data + toDevice(rand(*var.data.shape)))
    samples = [rand(*shape) for shape in shapes]
    runs = [numpy.concatenate([sample] * 3) for sample in samples]  # another batch size than the sample's
    checkExport(module, tmp_path / "m.onnx", samples if len(samples) > 1 else samples[0],
                runs if len(runs) > 1 else runs[0])


def test_a_nested_list_flattens_in_a_graph(tmp_path):
    a, b = Identity().node(), Identity().node()
    flat = ToList().node(Replicate(2).node(a), b)
    net = Graph(inputs=[a, b], outputs=Concat(axis=1).node(flat[0], flat[1], flat[2]))
    samples = [rand(2, 3), rand(2, 4)]
    checkExport(net, tmp_path / "g.onnx", samples, [numpy.concatenate([sample] * 3) for sample in samples])


def test_glue_is_refused_by_name(tmp_path):
    glue = Glue(lambda data, modules: data, lambda grad, modules: grad)
    with pytest.raises(ExportError, match="Glue"):
        checkExport(glue, tmp_path / "m.onnx", rand(2, 3))
