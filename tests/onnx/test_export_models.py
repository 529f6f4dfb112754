"""Every model builder of minidl.models exported at the digits' shapes and run in ONNX Runtime (resnet34 is
resnet18's blocks, more of them: left out for CI's time)."""

import numpy
import pytest

from minidl.backend import seed, toDevice
from minidl.models import MODELS
from tests.onnx.onnxcheck import checkExport

SHAPES = {True: (64,), False: (1, 8, 8)}


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"resnet34"}))
def test_every_digits_model(tmp_path, name):
    seed(5)
    spec = MODELS[name]
    net = spec.build(SHAPES[spec.flat], 10)
    rng = numpy.random.default_rng(5)
    for _ in range(2):  # trainMode passes move BatchNorm's running statistics away from (0, 1)
        net(toDevice(rng.standard_normal((4, *SHAPES[spec.flat])).astype(numpy.float32)))
    data = rng.standard_normal((5, *SHAPES[spec.flat])).astype(numpy.float32)
    checkExport(net, tmp_path / f"{name}.onnx", data[:1], data)
