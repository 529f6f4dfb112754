"""PRelu, CrossMapLRN, MapLRN, LCN, SubtractMean, SpatialTf and the eval-mode identities (Penalty, Dropout2D,
NoiseInjector) exported alone, run in ONNX Runtime at another batch size than the sample's, equal minidl's
eval-mode output."""

import numpy
import pytest

from minidl.backend import toDevice
from minidl.nn import LCN, CrossMapLRN, Dropout2D, MapLRN, NoiseInjector, Penalty, PRelu, SpatialTf, SubtractMean
from tests.onnx.onnxcheck import checkExport

rng = numpy.random.default_rng(7)


def normal(*shape):
    return rng.standard_normal(shape).astype(numpy.float32)


@pytest.mark.parametrize("sharedMaps, shape", [(False, (2, 3, 4, 5)), (True, (2, 3, 4, 5)), (False, (2, 3))])
def test_prelu(tmp_path, sharedMaps, shape):
    module = PRelu(3, sharedMaps=sharedMaps)
    module.vars["slopes"].data[...] = toDevice(numpy.linspace(-0.5, 0.5, module.slopes.size, dtype=numpy.float32))
    model = checkExport(module, tmp_path / "prelu.onnx", normal(*shape), normal(5, *shape[1:]))
    assert [node.op_type for node in model.graph.node] == ["PRelu"]


@pytest.mark.parametrize("module, shape", [
    (CrossMapLRN(5, 1e-2, 0.75, 2.0), (2, 7, 3, 4)),
    (CrossMapLRN(4, 0.3, 0.6, 1.0), (2, 6, 5)),
    (MapLRN(3, 0.5, 0.75, 1.0), (2, 2, 5, 6)),
    (MapLRN(4, 0.5, 0.6, 2.0), (1, 2, 6, 5)),
    (SubtractMean(3), (2, 2, 5, 4)),
    (SubtractMean(5, includePad=False), (2, 3, 6, 7)),
    (LCN(3, 0.8, 0.75, 1.0), (2, 2, 5, 6)),
    (LCN(5, 1.1, 0.6, 2.0, includePad=False), (1, 2, 7, 6)),
])
def test_local_normalisations(tmp_path, module, shape):
    checkExport(module, tmp_path / "norm.onnx", normal(*shape) * 2, normal(3, *shape[1:]) * 2)


@pytest.mark.parametrize("module", [Penalty("l2"), Dropout2D(0.5), NoiseInjector("mul", "gaussian", (1.0, 0.2))])
def test_eval_mode_identities(tmp_path, module):
    model = checkExport(module, tmp_path / "identity.onnx", normal(2, 3, 4), normal(4, 3, 4))
    assert [node.op_type for node in model.graph.node] == ["Identity"]


@pytest.mark.parametrize("alignCorners", [False, True])
@pytest.mark.parametrize("shape", [None, (3, 7)])
def test_spatial_tf_as_matmul_and_grid_sample(tmp_path, alignCorners, shape):
    theta = numpy.array([[1.1, 0.2, 0.1], [-0.3, 0.9, 0.2]], numpy.float32)
    samples = [normal(2, 3, 5, 6), (theta + 0.1 * normal(2, 2, 3)).astype(numpy.float32)]
    runs = [normal(4, 3, 5, 6), (theta + 0.1 * normal(4, 2, 3)).astype(numpy.float32)]
    model = checkExport(SpatialTf(shape, alignCorners=alignCorners), tmp_path / "stn.onnx", samples, runs,
                        dynamicAxes=[{0: "batch"}, {0: "batch"}])
    assert "GridSample" in [node.op_type for node in model.graph.node]
