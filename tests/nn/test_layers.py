"""BatchNorm, BatchNorm2D, Dropout, SoftMax, Flatten, Reshape, Embedder, Split and Mul: numerical gradients
in float64 over hypothesis-drawn shapes, behaviour against formulas written here, and bad input."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import ModuleError, backend, nn
from minidl.backend import readChecks, toDevice, toHost
from minidl.nn import BatchNorm, BatchNorm2D, Dropout, Embedder, Flatten, Module, Mul, Reshape, Sequential, SoftMax
from minidl.testing import checkGradients


def normal(shape, seed):
    return toDevice(numpy.random.default_rng(seed).standard_normal(shape))


@st.composite
def mapData(draw, ndim):
    shape = (draw(st.integers(2, 4)), draw(st.integers(1, 3))) + tuple(draw(st.integers(1, 3)) for _ in range(ndim - 2))
    return normal(shape, draw(st.integers(0, 2**16)))


def batchNorm(kind, maps, seed=0):
    module = kind(maps, dtype=numpy.float64)
    rng = numpy.random.default_rng(seed)
    module.vars["scale"].set(rng.uniform(0.5, 2, maps))
    module.vars["bias"].set(rng.standard_normal(maps))
    return module


@pytest.mark.parametrize("kind, ndim", [(BatchNorm, 2), (BatchNorm2D, 4)], ids=["BatchNorm", "BatchNorm2D"])
@given(data=st.data())
def test_batchnorm_gradients_in_train_and_eval_mode(kind, ndim, data):
    x = data.draw(mapData(ndim))
    module = batchNorm(kind, x.shape[1])
    checkGradients(module, x)
    module.runningVar[...] = toDevice(numpy.random.default_rng(1).uniform(0.5, 2, x.shape[1]))
    checkGradients(module.evalMode(), x)


def test_batchnorm2d_normalises_per_map_and_tracks_running_statistics():
    x = normal((4, 3, 2, 5), 0) * 3 + 1
    module = batchNorm(BatchNorm2D, 3)
    host = toHost(x)
    mean, var = host.mean(axis=(0, 2, 3)), host.var(axis=(0, 2, 3))
    xhat = (host - mean[None, :, None, None]) / numpy.sqrt(var[None, :, None, None] + 1e-5)
    expected = xhat * toHost(module.scale)[None, :, None, None] + toHost(module.bias)[None, :, None, None]
    numpy.testing.assert_allclose(toHost(module(x)), expected, rtol=1e-10, atol=1e-10)
    module(x)
    count = 4 * 2 * 5
    buffers = module.getBufferTable()
    numpy.testing.assert_allclose(toHost(buffers["mean"]), mean * (1 - 0.9**2), rtol=1e-10)
    numpy.testing.assert_allclose(toHost(buffers["var"]), 0.9**2 + var * count / (count - 1) * (1 - 0.9**2),
                                  rtol=1e-10)
    module.evalMode()
    running = (host - toHost(buffers["mean"])[None, :, None, None]) / numpy.sqrt(
        toHost(buffers["var"])[None, :, None, None] + 1e-5)
    numpy.testing.assert_allclose(toHost(module(x)), running * toHost(module.scale)[None, :, None, None]
                                  + toHost(module.bias)[None, :, None, None], rtol=1e-10, atol=1e-10)


def test_buffer_tables_reach_running_statistics_through_containers():
    first, second = BatchNorm(3, name="bn1"), BatchNorm2D(2)
    net = Sequential().extend([first, Sequential(name="inner").append(second)])
    table = net.getBufferTable()
    assert list(table) == ["bn1.mean", "bn1.var", "inner.0.mean", "inner.0.var"]
    assert table["inner.0.var"] is second.runningVar
    assert set(net.getVarTable()) == {"bn1.scale", "bn1.bias", "inner.0.scale", "inner.0.bias"}


def test_batchnorm_bad_input_leaves_running_statistics_unchanged():
    module = BatchNorm2D(3)
    with pytest.raises(ModuleError, match=r"3 maps on axis 1, got shape \(2, 4, 5, 5\)"):
        module(toDevice(numpy.ones((2, 4, 5, 5), numpy.float32)))
    with pytest.raises(ModuleError, match="more than one value per map"):
        BatchNorm(3)(toDevice(numpy.ones((1, 3), numpy.float32)))
    assert not toHost(module.runningMean).any() and (toHost(module.runningVar) == 1).all()


class Reseeded(Module):
    """Runs a module after backend.seed(0), so that Dropout draws the same mask at every call."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def updData(self, data):
        backend.seed(0)
        return self.module(data)

    def updGrad(self, grad):
        return self.module.backward(grad)


@given(x=mapData(4), p=st.sampled_from([0.0, 0.3, 0.7]))
def test_dropout_gradients(x, p):
    checkGradients(Reseeded(Dropout(p)), x)


def test_dropout_drops_a_fraction_p_scales_the_rest_and_is_reproducible_under_seed():
    x = toDevice(numpy.ones((100, 100), numpy.float32))
    backend.seed(3)
    first = toHost(Dropout(0.3)(x))
    backend.seed(3)
    second = toHost(Dropout(0.3)(x))
    numpy.testing.assert_array_equal(first, second)
    assert set(numpy.unique(first)) == {0.0, numpy.float32(1 / 0.7)}
    assert abs((first == 0).mean() - 0.3) < 0.02  # 10,000 draws: 4.5 standard deviations
    assert toHost(Dropout(0.3).evalMode()(x)).min() == 1


@given(x=st.one_of(mapData(2), mapData(4)))
def test_softmax_gradients_and_values(x):
    host = toHost(x)
    expected = numpy.exp(host) / numpy.exp(host).sum(axis=1, keepdims=True)
    numpy.testing.assert_allclose(toHost(SoftMax()(x)), expected, rtol=1e-12)
    checkGradients(SoftMax(), x)


@given(x=st.one_of(mapData(2), mapData(4)))
def test_flatten_and_reshape(x):
    assert Flatten()(x).shape == (x.shape[0], x.size // x.shape[0])
    checkGradients(Flatten(), x)
    checkGradients(Reshape((-1,) + x.shape[:0:-1]), x)


def test_reshape_rejects_a_size_mismatch():
    with pytest.raises(ModuleError, match=r"shape \(2, 6\) \(12 elements\) as \(5, -1\)"):
        Reshape((5, -1))(toDevice(numpy.zeros((2, 6))))


@pytest.mark.parametrize("make, message", [  # each raised TypeError ('int' object is not iterable, ...)
    (lambda: Reshape(6), "Reshape shape must be a tuple of sides"),
    (lambda: nn.Split(1, 3), "Split sections must be a tuple of at least 2 sizes"),
    (lambda: nn.Transpose(1), "Transpose axes must be a permutation"),
    (lambda: nn.Pad2D(1.5), "pad must be an int, a pair"),
    (lambda: nn.Pad2D(None), "pad must be an int, a pair"),
    (lambda: nn.Pad2D(1, mode=["reflect"]), "mode must be one of"),
    (lambda: nn.Pad2D(1, value=None), "value must be a real number"),
    (lambda: nn.Pad2D(1, value="0"), "value must be a real number"),
])
def test_shape_arguments_of_the_wrong_type_are_refused(make, message):
    with pytest.raises(ModuleError, match=message):
        make()
    assert nn.Pad2D(numpy.array([1, 2])).top == 1 and nn.Pad2D(1, value=-numpy.inf).value == -numpy.inf


def test_embedder_gathers_rows_and_accumulates_repeated_indices():
    embedder = Embedder(5, 3, dtype=numpy.float64)
    indices = toDevice(numpy.array([[1, 4, 1], [0, 1, 4]], dtype=numpy.int32))
    numpy.testing.assert_array_equal(toHost(embedder(indices)), toHost(embedder.W)[toHost(indices)])
    checkGradients(embedder, indices)
    grad = numpy.random.default_rng(0).standard_normal((2, 3, 3))
    embedder.vars["W"].grad.fill(0)
    embedder(indices)
    embedder.backward(toDevice(grad))
    expected = numpy.zeros((5, 3))
    for (row, column), index in numpy.ndenumerate(toHost(indices)):
        expected[index] += grad[row, column]
    numpy.testing.assert_allclose(toHost(embedder.vars["W"].grad), expected, rtol=1e-12)


def test_embedder_rejects_wrong_index_dtype_and_range():
    embedder = Embedder(5, 3)
    with pytest.raises(ModuleError, match=r"integer indices, got float32 \(2, 3\)"):
        embedder(toDevice(numpy.zeros((2, 3), numpy.float32)))
    with pytest.raises(ModuleError, match=r"\[0, 5\), got values in \[0, 5\]"):
        embedder(toDevice(numpy.array([0, 5])))
        readChecks()  # at the call on the CPU, at the next read on a GPU


@given(data=st.data())
def test_mul_gradients(data):
    shape = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 4)))
    inputs = [normal(shape, seed) for seed in range(data.draw(st.integers(2, 3)))]
    numpy.testing.assert_allclose(toHost(Mul()(inputs)), numpy.prod([toHost(x) for x in inputs], axis=0))
    checkGradients(Mul(), inputs)


def test_mul_rejects_inputs_of_different_shapes():
    with pytest.raises(ModuleError, match=r"one shape, got \[\(2, 3\), \(3, 2\)\]"):
        Mul()([normal((2, 3), 0), normal((3, 2), 1)])


def test_batchnorm2d_in_float16_matches_float64_over_more_than_65504_values_per_map():
    """float16 sums overflow past 65504: the statistics of 64x32x32 values per map are taken in float32."""
    host = numpy.random.default_rng(0).standard_normal((64, 2, 32, 32)) * 2 + 1
    # a gradient with a mean and a part along x̂, so that neither term of ∂x nor Σ grad x̂ is lost in cancellation
    grad = ((host - 1) / 2 + 3 + numpy.random.default_rng(1).standard_normal(host.shape)) / 256
    results = {}
    for dtype in (numpy.float16, numpy.float64):
        module = BatchNorm2D(2, dtype=dtype)
        output = toHost(module(toDevice(host, dtype=dtype)))
        ingrad = toHost(module.backward(toDevice(grad, dtype=dtype)))
        results[dtype] = (output, ingrad, toHost(module.runningMean), toHost(module.runningVar),
                          toHost(module.vars["scale"].grad), toHost(module.vars["bias"].grad))
    names = ["y", "ingrad", "running mean", "running var", "scale grad", "bias grad"]
    for half, full, what in zip(results[numpy.float16], results[numpy.float64], names):
        assert numpy.isfinite(half).all(), what
        numpy.testing.assert_allclose(half, full, rtol=1e-2, atol=1e-2 * numpy.abs(full).max(), err_msg=what)
