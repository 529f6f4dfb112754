"""The convolution family exported alone and run in ONNX Runtime: Conv1D, Deconv2D, Pad2D, Upsample2D,
GlobalAvgPool2D, GroupNorm, InstanceNorm2D."""

import pytest

from minidl.backend import seed
from minidl.nn import Conv1D, Deconv2D, GlobalAvgPool2D, GroupNorm, InstanceNorm2D, Pad2D, Upsample2D
from tests.onnx.onnxcheck import checkExport
from tests.onnx.test_export_modules import normal, randomise


@pytest.fixture(autouse=True)
def seeded():
    seed(6)


@pytest.mark.parametrize("options", [{}, {"stride": 2, "pad": 1}, {"dilation": 2, "groups": 2, "useBias": False}])
def test_conv1d(tmp_path, options):
    checkExport(randomise(Conv1D(4, 6, 3, **options)), tmp_path / "c.onnx", normal(1, 4, 9), normal(3, 4, 9))


@pytest.mark.parametrize("options", [{}, {"stride": 2, "pad": 1, "outpad": 1}, {"size": (2, 3), "stride": (2, 1)},
                                     {"dilation": 2, "groups": 2, "useBias": False}])
def test_deconv2d(tmp_path, options):
    options = {"size": 3, **options}
    deconv = randomise(Deconv2D(4, 6, options.pop("size"), **options))
    checkExport(deconv, tmp_path / "d.onnx", normal(1, 4, 5, 4), normal(2, 4, 5, 4))


@pytest.mark.parametrize("mode, value", [("constant", 0.0), ("constant", -1.5), ("reflect", 0.0), ("replicate", 0.0)])
def test_pad2d(tmp_path, mode, value):
    pad = Pad2D((1, 2, 0, 3), mode=mode, value=value)
    checkExport(pad, tmp_path / "p.onnx", normal(1, 2, 4, 5), normal(3, 2, 4, 5))


@pytest.mark.parametrize("scale", [2, (3, 2)])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample2d(tmp_path, scale, mode):
    checkExport(Upsample2D(scale, mode), tmp_path / "u.onnx", normal(1, 2, 3, 4), normal(2, 2, 3, 4))


def test_global_pool_and_per_sample_norms(tmp_path):
    checkExport(GlobalAvgPool2D(), tmp_path / "g.onnx", normal(1, 3, 4, 5), normal(2, 3, 4, 5))
    checkExport(randomise(GroupNorm(2, 6, epsilon=1e-3)), tmp_path / "gn.onnx", normal(1, 6, 3, 3), normal(4, 6, 3, 3))
    checkExport(randomise(GroupNorm(3, 6)), tmp_path / "gn3.onnx", normal(1, 6, 5), normal(4, 6, 5))
    checkExport(randomise(InstanceNorm2D(3)), tmp_path / "in.onnx", normal(1, 3, 4, 4), normal(2, 3, 4, 4))
