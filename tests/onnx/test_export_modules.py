"""Every module exported alone, run in ONNX Runtime at another batch size than the sample's, equals minidl's
eval-mode output."""

import numpy
import pytest

import minidl.nn
from minidl.backend import seed, toDevice
from minidl.nn import (
    Activation,
    Add,
    AvgPool2D,
    BatchNorm,
    BatchNorm2D,
    Cast,
    Concat,
    Conv1D,
    Conv2D,
    Dropout,
    Embedder,
    Flatten,
    Graph,
    Identity,
    Linear,
    MaxPool2D,
    Mul,
    Reshape,
    Sequential,
    SoftMax,
    Split,
    activationfunctions,
)
from minidl.nn.directconv import directly
from minidl.nn.im2col import Window
from minidl.onnx import EXPORTERS
from tests.onnx.onnxcheck import checkExport, onnxruntime

rng = numpy.random.default_rng(5)


def normal(*shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(numpy.float32)


def randomise(module):
    """Nonzero biases and running statistics, so that each one's place in the formula is tested."""
    for var in module.getVarTable().values():
        var.data[...] = toDevice(normal(*var.data.shape))
    for buffer in module.getBufferTable().values():
        buffer[...] = toDevice(rng.uniform(0.5, 2.0, buffer.shape).astype(buffer.dtype))
    return module


@pytest.fixture(autouse=True)
def seeded():
    seed(3)


@pytest.mark.parametrize("useBias", [True, False])
def test_linear(tmp_path, useBias):
    checkExport(randomise(Linear(6, 4, useBias=useBias)), tmp_path / "m.onnx", normal(2, 6), normal(5, 6))


@pytest.mark.parametrize("function, args", [
    (activationfunctions.relu, ()), (activationfunctions.leakyRelu, (0.2,)), (activationfunctions.sigmoid, ()),
    (activationfunctions.tanh, ()), (activationfunctions.elu, (0.7,)), (activationfunctions.softPlus, ()),
    (activationfunctions.gelu, ()),
])
def test_every_activation(tmp_path, function, args):
    run = normal(7, 9, scale=4.0)
    run[0, :4] = (0.0, -30.0, 30.0, 80.0)  # softPlus and sigmoid far out on both sides
    checkExport(Activation(function, args=args), tmp_path / "m.onnx", normal(2, 9), run)


def test_every_activation_function_has_an_onnx_operator():
    from minidl.onnx.activations import FUNCTIONS

    assert sorted(function.name for function in activationfunctions.ALL) == sorted(FUNCTIONS)


@pytest.mark.parametrize("options", [
    {}, {"stride": 2, "pad": 1}, {"dilation": 2, "pad": (2, 1)}, {"groups": 2, "useBias": False},
    {"size": (3, 1), "stride": (1, 2), "groups": 4},
])
def test_conv2d(tmp_path, options):
    options = {"size": 3, **options}
    conv = randomise(Conv2D(4, 8, options.pop("size"), **options))
    checkExport(conv, tmp_path / "m.onnx", normal(1, 4, 7, 6), normal(3, 4, 7, 6))


@pytest.mark.parametrize("make, shape", [(lambda: Conv2D(4, 8, 3, pad=1), (3, 4, 16, 17)),
                                         (lambda: Conv1D(4, 6, 5, pad=2), (3, 4, 300))])
def test_a_convolution_computed_directly(tmp_path, make, shape, monkeypatch):
    """Maps of 256 positions or more and stride 1: on the CPU minidl sums them directly (minidl.nn.directconv), and
    ONNX Runtime's Conv gives the same values."""
    calls = []
    made = minidl.nn.conv2d.directConvolution
    monkeypatch.setattr(minidl.nn.conv2d, "directConvolution", lambda *args, **kwargs: calls.append(1) or made(
        *args, **kwargs))
    checkExport(randomise(make()), tmp_path / "m.onnx", normal(1, *shape[1:]), normal(*shape))
    assert calls or not directly(Window(3), 1, numpy.float32)


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("options", [{}, {"size": 3, "stride": 2, "pad": 1}, {"size": (2, 3), "stride": 1},
                                     {"size": 3, "stride": 2, "ceilMode": True},
                                     {"size": 3, "stride": 2, "pad": 1, "ceilMode": True}])
def test_pools(tmp_path, pool, options):
    checkExport(pool(**options), tmp_path / "m.onnx", normal(1, 3, 7, 8), normal(2, 3, 7, 8))


@pytest.mark.parametrize("pool, shape, features", [
    (MaxPool2D, (2, 8, 8), 2 * 3 * 3), (AvgPool2D, (2, 8, 8), 2 * 3 * 3),  # 3 windows of 3 over 8 + 2 pads, not 4
    (MaxPool2D, (2, 8, 9), 2 * 3 * 4), (AvgPool2D, (2, 8, 9), 2 * 3 * 4),  # ceil mode's fourth window kept on 9
    (minidl.nn.MaxPool1D, (3, 8), 3 * 3), (minidl.nn.AvgPool1D, (3, 8), 3 * 3),
    (minidl.nn.MaxPool3D, (2, 5, 6, 7), 2 * 2 * 3 * 3), (minidl.nn.AvgPool3D, (2, 5, 6, 7), 2 * 2 * 3 * 3),
])
def test_a_ceil_mode_pool_that_drops_its_last_window_feeds_a_linear(tmp_path, pool, shape, features):
    """Ceil mode drops a last window that would start in the trailing pad, as PyTorch does, where opset 17's formula
    counts it: the file must compute (and declare) minidl's shape, or a Flatten and Linear after it do not export."""
    net = Sequential(pool(3, 3, pad=1, ceilMode=True), Flatten(), randomise(Linear(features, 2)))
    model = checkExport(net, tmp_path / "m.onnx", normal(1, *shape), normal(3, *shape))
    output = model.graph.output[0].type.tensor_type.shape.dim
    assert [dim.dim_param or dim.dim_value for dim in output] == ["batch", 2]


def test_batchnorm_uses_the_running_statistics(tmp_path):
    checkExport(randomise(BatchNorm(5, epsilon=1e-3)), tmp_path / "m.onnx", normal(2, 5), normal(6, 5))
    checkExport(randomise(BatchNorm2D(3)), tmp_path / "m2.onnx", normal(2, 3, 4, 4), normal(1, 3, 4, 4))


def test_pass_throughs_and_softmax(tmp_path):
    checkExport(Dropout(0.5), tmp_path / "d.onnx", normal(2, 6), normal(4, 6))
    checkExport(Identity(), tmp_path / "i.onnx", normal(2, 6), normal(4, 6))
    checkExport(SoftMax(), tmp_path / "s.onnx", normal(2, 6, scale=5.0), normal(4, 6, scale=5.0))
    checkExport(SoftMax(), tmp_path / "s4.onnx", normal(2, 3, 2, 2), normal(3, 3, 2, 2))


def test_flatten_and_reshape_keep_the_batch_dynamic(tmp_path):
    checkExport(Flatten(), tmp_path / "f.onnx", normal(2, 3, 2, 2), normal(5, 3, 2, 2))
    checkExport(Reshape((-1, 3, 4)), tmp_path / "r.onnx", normal(2, 12), normal(5, 12))
    checkExport(Reshape((2, 4, 3)), tmp_path / "r2.onnx", normal(2, 12))  # the batch side given
    run = normal(7, 12)  # minidl's module takes batch 2 only; the file takes any batch, as its first side is 0
    session = onnxruntime.InferenceSession(tmp_path / "r2.onnx", providers=["CPUExecutionProvider"])
    numpy.testing.assert_array_equal(session.run(None, {"input": run})[0], run.reshape(7, 4, 3))


def test_merges_and_split(tmp_path):
    for merge in (Add(), Mul(), Concat(axis=1), Concat(axis=-1)):
        left, right = Identity().node(), Identity().node()
        net = Graph(inputs=[left, right], outputs=merge.node(left, right))
        checkExport(net, tmp_path / "m.onnx", [normal(2, 3, 4), normal(2, 3, 4)], [normal(5, 3, 4), normal(5, 3, 4)])
    split = Split(axis=1, sections=(2, 3, 1)).node()
    checkExport(Graph(inputs=split, outputs=[Identity().node(split[2]), Concat().node(split[0], split[1])]),
                tmp_path / "s.onnx", normal(2, 6), normal(4, 6))


@pytest.mark.parametrize("dtype", [numpy.int32, numpy.int64])
def test_embedder(tmp_path, dtype):
    indices = rng.integers(0, 11, size=(3, 4)).astype(dtype)
    checkExport(Embedder(11, 5), tmp_path / "e.onnx", indices[:1], indices)


def test_every_module_of_minidl_nn_has_an_exporter():
    modules = [getattr(minidl.nn, name) for name in minidl.nn.__all__]
    concrete = [cls for cls in modules if isinstance(cls, type) and issubclass(cls, minidl.nn.Module)
                and cls not in (minidl.nn.Module, minidl.nn.Container, minidl.nn.Glue)]  # Glue runs Python code
    assert [cls.__name__ for cls in concrete if cls not in EXPORTERS] == []


def test_a_nested_container_and_a_module_used_twice(tmp_path):
    shared = randomise(Linear(4, 4))
    inner = Sequential().extend([shared, Activation(activationfunctions.tanh)])
    inp = Identity().node()
    out = Add().node(inner.node(inp), shared.node(inp))
    model = checkExport(Graph(inputs=inp, outputs=out), tmp_path / "g.onnx", normal(2, 4), normal(3, 4))
    assert len(model.graph.initializer) == 2, "the shared Linear's W and b are stored once"


def test_float64_networks_export_in_float64(tmp_path):
    net = Sequential().extend([Linear(3, 4, dtype=numpy.float64), Activation(activationfunctions.gelu),
                               BatchNorm(4, dtype=numpy.float64)])
    x = rng.standard_normal((2, 3))
    model = checkExport(randomise(net), tmp_path / "f64.onnx", x, rng.standard_normal((6, 3)))
    assert model.graph.output[0].type.tensor_type.elem_type == 11  # TensorProto.DOUBLE


def test_dynamic_time_and_batch_axes(tmp_path):
    indices = rng.integers(0, 9, size=(4, 3))  # (time, batch)
    checkExport(Embedder(9, 2), tmp_path / "e.onnx", indices[:2, :1], indices, dynamicAxes={0: "time", 1: "batch"})
    checkExport(Embedder(9, 2), tmp_path / "b.onnx", indices[:, :1], indices, dynamicAxes={1: "batch"})


def test_scalars_are_stored_as_0_d_tensors(tmp_path):
    model = checkExport(Activation(activationfunctions.gelu), tmp_path / "g.onnx", normal(2, 3), normal(4, 3))
    assert [list(init.dims) for init in model.graph.initializer] == [[]] * 4


def test_cast(tmp_path):
    net = Sequential(Cast(numpy.float64), Linear(3, 2, dtype=numpy.float64), Cast(numpy.float16))
    model = checkExport(randomise(net), tmp_path / "c.onnx", normal(1, 3), normal(4, 3))
    assert model.graph.output[0].type.tensor_type.elem_type == 10  # TensorProto.FLOAT16
