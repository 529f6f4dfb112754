"""loadTorchStateDict matches layers by name (order only when asked), checks a file's header before reading any
tensor, and refuses the values a checkpoint load refuses."""

import tracemalloc

import numpy
import pytest
import safetensors.numpy

from minidl.backend import seed, toHost
from minidl.errors import CheckpointError
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import BatchNorm, Linear, Sequential
from tests.test_tensorfile import rawHeaderFile


def encoderDecoder():
    return Sequential().extend([Linear(3, 3, name="encoder"), Linear(3, 3, name="decoder")])


def test_layers_of_equal_shapes_load_by_name_not_by_sorted_order(tmp_path):
    seed(1)
    net = encoderDecoder()
    saveTorchStateDict(net, tmp_path / "state.safetensors")
    stored = safetensors.numpy.load_file(tmp_path / "state.safetensors")
    assert list(stored)[0].startswith("decoder")  # the file sorts its names: decoder comes first
    seed(2)
    other = encoderDecoder()
    loadTorchStateDict(other, tmp_path / "state.safetensors")
    numpy.testing.assert_array_equal(toHost(other[0].W), toHost(net[0].W))
    numpy.testing.assert_array_equal(toHost(other[1].W), toHost(net[1].W))
    state = {name: stored[name] for name in ["decoder.weight", "decoder.bias", "encoder.weight", "encoder.bias"]}
    swapped = loadTorchStateDict(encoderDecoder(), state, match="order")  # by order, as asked: decoder's first
    numpy.testing.assert_array_equal(toHost(swapped[0].W), toHost(net[1].W))
    with pytest.raises(CheckpointError, match="match must be one of"):
        loadTorchStateDict(encoderDecoder(), state, match="sorted")


def test_a_large_mismatched_file_is_refused_from_its_header(tmp_path):
    size = 256 * 2**20
    path = tmp_path / "big.safetensors"
    rawHeaderFile(path, {
        "encoder.weight": {"dtype": "F32", "shape": [size // 4 // 3, 3], "data_offsets": [0, size - 4]},
        "encoder.bias": {"dtype": "F32", "shape": [1], "data_offsets": [size - 4, size]},
    }, size)
    net = Sequential().extend([Linear(3, 3, name="encoder")])
    before = toHost(net[0].W).copy()
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"'encoder.weight' is float32 \(22369621, 3\)"):
            loadTorchStateDict(net, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"refusing a {size >> 20} MiB file peaked at {peak} bytes"
    numpy.testing.assert_array_equal(toHost(net[0].W), before)


@pytest.mark.parametrize("variance, message", [(-1.0, "finite and >= 0"), (numpy.nan, "finite and >= 0")])
def test_a_batchnorm_variance_a_checkpoint_refuses_is_refused(tmp_path, variance, message):
    net = Sequential().extend([Linear(2, 2), BatchNorm(2)])
    state = {"0.weight": numpy.ones((2, 2), numpy.float32), "0.bias": numpy.zeros(2, numpy.float32),
             "1.weight": numpy.ones(2, numpy.float32), "1.bias": numpy.zeros(2, numpy.float32),
             "1.running_mean": numpy.zeros(2, numpy.float32),
             "1.running_var": numpy.array([1.0, variance], numpy.float32)}
    before = {name: toHost(array).copy() for name, array in net.getArrayTable().items()}
    for source in (state, tmp_path / "state.safetensors"):
        safetensors.numpy.save_file(state, tmp_path / "state.safetensors")
        with pytest.raises(CheckpointError, match=message):
            loadTorchStateDict(net, source)
        for name, array in net.getArrayTable().items():
            numpy.testing.assert_array_equal(toHost(array), before[name])
