"""The 1-D and 3-D family, KMaxPool and MaxUnpool2D exported alone and run in ONNX Runtime (MaxUnpool2D refused
with a clear ExportError)."""

import numpy
import pytest

from minidl import nn
from minidl.backend import seed, toDevice
from minidl.errors import ExportError
from minidl.onnx import export
from tests.onnx.onnxcheck import checkExport
from tests.onnx.test_export_modules import normal, randomise


@pytest.fixture(autouse=True)
def seeded():
    seed(6)


@pytest.mark.parametrize("options", [{}, {"stride": (2, 1, 2), "pad": 1}, {"dilation": (1, 2, 1), "groups": 2,
                                                                           "useBias": False}])
def test_conv3d(tmp_path, options):
    checkExport(randomise(nn.Conv3D(4, 6, 3, **options)), tmp_path / "c.onnx", normal(1, 4, 5, 6, 5),
                normal(2, 4, 5, 6, 5))


@pytest.mark.parametrize("options", [{}, {"stride": 2, "pad": 1, "outpad": (1, 0, 1)},
                                     {"dilation": 2, "groups": 2, "useBias": False}])
def test_deconv3d(tmp_path, options):
    checkExport(randomise(nn.Deconv3D(4, 6, 3, **options)), tmp_path / "d.onnx", normal(1, 4, 3, 4, 3),
                normal(2, 4, 3, 4, 3))


@pytest.mark.parametrize("options", [{}, {"stride": 2, "pad": 1, "outpad": 1}, {"dilation": 2, "groups": 2,
                                                                                 "useBias": False}])
def test_deconv1d(tmp_path, options):
    checkExport(randomise(nn.Deconv1D(4, 6, 3, **options)), tmp_path / "d.onnx", normal(1, 4, 7), normal(3, 4, 7))


@pytest.mark.parametrize("size, stride, pad, ceilMode", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True)])
def test_pools(tmp_path, size, stride, pad, ceilMode):
    for kind in (nn.MaxPool3D, nn.AvgPool3D):
        checkExport(kind(size, stride, pad, ceilMode), tmp_path / "p3.onnx", normal(1, 2, 5, 6, 7),
                    normal(2, 2, 5, 6, 7))
    for kind in (nn.MaxPool1D, nn.AvgPool1D):
        checkExport(kind(size, stride, pad, ceilMode), tmp_path / "p1.onnx", normal(1, 3, 9), normal(2, 3, 9))


def test_one_d_layers_made_for_a_gpu_export_alike(tmp_path, monkeypatch):
    """On a GPU the 1-D layers keep the length as rows of their 2-D window (minidl.nn.line): the same ONNX."""
    from minidl.nn import line

    monkeypatch.setattr(line, "isGpu", True)
    deconv = randomise(nn.Deconv1D(4, 6, 3, stride=2, pad=1, outpad=1, dilation=2))
    assert deconv.window.size == (3, 1)
    checkExport(deconv, tmp_path / "d.onnx", normal(1, 4, 7), normal(3, 4, 7))
    for kind in (nn.MaxPool1D, nn.AvgPool1D):
        checkExport(kind(3, 2, 1, True), tmp_path / "p.onnx", normal(1, 3, 10), normal(2, 3, 10))


def test_batchnorms(tmp_path):
    for norm, shape in ((nn.BatchNorm1D(3), (4, 3, 5)), (nn.BatchNorm3D(3), (2, 3, 3, 4, 2))):
        randomise(norm)
        norm(toDevice(normal(*shape)))  # running statistics of their own
        checkExport(norm, tmp_path / "bn.onnx", normal(1, *shape[1:]), normal(*shape))


@pytest.mark.parametrize("k, axis", [(3, -1), (2, 1), (4, 2)])
def test_kmax_pool(tmp_path, k, axis):
    ties = numpy.round(normal(3, 4, 6)).astype(numpy.float32)  # few distinct values: the earlier of equals wins
    checkExport(nn.KMaxPool(k, axis), tmp_path / "k.onnx", normal(1, 4, 6), ties)


def test_max_unpool_is_refused_with_the_reason(tmp_path):
    pool = nn.MaxPool2D(2)
    net = nn.Sequential()
    net.append(pool)
    net.append(nn.MaxUnpool2D(pool))
    with pytest.raises(ExportError, match="MaxUnpool2D cannot be exported to ONNX: it needs the window maxima"):
        export(net, tmp_path / "u.onnx", toDevice(normal(1, 2, 4, 4)))
    assert not (tmp_path / "u.onnx").exists()
