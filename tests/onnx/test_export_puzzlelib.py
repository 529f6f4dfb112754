"""The ONNX exporters of Slice, Tile, Replicate, Sum, MulAddConst, MoveAxis, DepthConcat, ToList, GroupLinear and
Parallel, run in ONNX Runtime at another batch size; Glue (a user's Python functions) is refused by name."""

import numpy
import pytest

from minidl import nn
from minidl.backend import toDevice
from minidl.errors import ExportError
from tests.onnx.onnxcheck import checkExport


def rand(*shape):
    return numpy.random.default_rng(sum(shape)).standard_normal(shape).astype(numpy.float32)


CASES = {
    "slice": (lambda: nn.Slice()[:, 1:-1, ::2], [(2, 5, 6)]),
    "slice-reversed": (lambda: nn.Slice((slice(None), slice(None, None, -2))), [(2, 5)]),
    "tile": (lambda: nn.Tile(axis=1, times=3), [(2, 3, 2)]),
    "replicate": (lambda: nn.Replicate(2), [(2, 4)]),
    "sum": (lambda: nn.Sum(axis=1, useWeights=False), [(2, 4, 5)]),
    "sum-weighted": (lambda: nn.Sum(axis=1), [(2, 4, 5), (2, 4)]),
    "muladdconst": (lambda: nn.MulAddConst(a=-2.5, b=0.75), [(2, 4)]),
    "moveaxis": (lambda: nn.MoveAxis(1, 3), [(2, 3, 4, 5)]),
    "depthconcat": (lambda: nn.DepthConcat(), [(2, 3, 2, 2), (2, 2, 6, 6), (2, 1, 5, 3)]),
    "grouplinear": (lambda: nn.GroupLinear(3, 4, 2), [(2, 3, 4)]),
    "grouplinear-one-input": (lambda: nn.GroupLinear(3, 4, 2, inmode="one"), [(2, 1, 4)]),
    "grouplinear-one-weight": (lambda: nn.GroupLinear(None, 4, 2, wmode="one"), [(2, 5, 4)]),
    "parallel": (lambda: nn.Parallel(nn.Linear(3, 2), nn.Activation(nn.relu)), [(2, 3), (2, 4)]),
    "tolist": (lambda: nn.ToList(), [(2, 3), (2, 4)]),
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
    a, b = nn.Identity().node(), nn.Identity().node()
    flat = nn.ToList().node(nn.Replicate(2).node(a), b)
    net = nn.Graph(inputs=[a, b], outputs=nn.Concat(axis=1).node(flat[0], flat[1], flat[2]))
    samples = [rand(2, 3), rand(2, 4)]
    checkExport(net, tmp_path / "g.onnx", samples, [numpy.concatenate([sample] * 3) for sample in samples])


def test_glue_is_refused_by_name(tmp_path):
    glue = nn.Glue(lambda data, modules: data, lambda grad, modules: grad)
    with pytest.raises(ExportError, match="Glue"):
        checkExport(glue, tmp_path / "m.onnx", rand(2, 3))
