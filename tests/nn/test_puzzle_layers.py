"""PRelu, Penalty, Dropout2D, NoiseInjector, CrossMapLRN, MapLRN, LCN, SubtractMean and SpatialTf: outputs against
float64 formulas written here (loops over positions, independent of the modules' window sums), gradients against
central differences (float64), the random layers' draws, and bad input."""

import itertools
import math

import numpy
import pytest

from minidl import ModuleError, backend
from minidl.backend import toDevice, toHost
from minidl.nn import LCN, CrossMapLRN, Dropout2D, MapLRN, NoiseInjector, Penalty, PRelu, SpatialTf, SubtractMean
from minidl.testing import checkGradients
from tests import philoxoracle


def rand(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


def lrnOracle(x, N, alpha, beta, K, axes):
    """LRN over windows [p - (N-1)//2, p + N - 1 - (N-1)//2] along ``axes`` (1 for maps, (2, 3) in a map)."""
    before = (N - 1) // 2
    norms = numpy.empty_like(x)
    count = N ** len(axes)
    for index in numpy.ndindex(x.shape):
        window = list(index)
        for axis in axes:
            window[axis] = slice(max(0, index[axis] - before), index[axis] + N - before)
        norms[index] = K + alpha / count * (x[tuple(window)] ** 2).sum()
    return x / norms ** beta


def localMeans(x, size, includePad):
    radius = size // 2
    means = numpy.empty_like(x)
    height, width = x.shape[2:]
    for n, c, i, j in numpy.ndindex(x.shape):
        window = x[n, c, max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1]
        means[n, c, i, j] = window.sum() / (size * size if includePad else window.size)
    return means


def lcnOracle(x, N, alpha, beta, K, includePad):
    means = localMeans(x, N, includePad)
    radius = N // 2
    norms = numpy.empty_like(x)
    for n, c, i, j in numpy.ndindex(x.shape):
        window = x[n, c, max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1]
        norms[n, c, i, j] = K + alpha / N ** 2 * ((window - means[n, c, i, j]) ** 2).sum()
    return x / norms ** beta


def bilinearOracle(x, theta, outShape, alignCorners):
    """affine_grid + grid_sample written as loops over output positions."""
    batch, maps, height, width = x.shape
    outH, outW = outShape

    def base(j, length):
        if length == 1:
            return 0.0
        u = -1 + 2 * j / (length - 1)
        return u if alignCorners else u * (length - 1) / length

    def pixel(g, side):
        return (g + 1) * (side - 1) / 2 if alignCorners else ((g + 1) * side - 1) / 2

    out = numpy.zeros((batch, maps, outH, outW))
    for n, i, j in itertools.product(range(batch), range(outH), range(outW)):
        gx, gy = theta[n] @ numpy.array([base(j, outW), base(i, outH), 1.0])
        ix, iy = pixel(gx, width), pixel(gy, height)
        x0, y0 = int(numpy.floor(ix)), int(numpy.floor(iy))
        for a, b in itertools.product((y0, y0 + 1), (x0, x0 + 1)):
            if 0 <= a < height and 0 <= b < width:
                out[n, :, i, j] += x[n, :, a, b] * (1 - abs(iy - a)) * (1 - abs(ix - b))
    return out


def awayFromCells(theta, x, outShape, alignCorners):
    """theta nudged until no sampling position lies within 1e-3 of a pixel line (the kinks of bilinear sampling)."""
    rng = numpy.random.default_rng(1)
    for _ in range(100):
        module = SpatialTf(outShape, alignCorners=alignCorners)
        module([toDevice(x), toDevice(theta)])
        pixels = numpy.concatenate([toHost(p).ravel() for p in module.pixels])
        if (numpy.abs(pixels - numpy.round(pixels)) > 1e-3).all():
            return theta
        theta = theta + rng.uniform(-0.01, 0.01, theta.shape)
    raise AssertionError("no theta away from the pixel lines")


# name -> (module maker, input maker, oracle or None)
CASES = {
    "prelu": (lambda: PRelu(3, dtype=numpy.float64), lambda: rand(2, 3, 4, 5),
              lambda m, x: numpy.where(x > 0, x, x * toHost(m.slopes).reshape(1, 3, 1, 1))),
    "preluShared": (lambda: PRelu(7, sharedMaps=True, dtype=numpy.float64), lambda: rand(4, 5),
                    lambda m, x: numpy.where(x > 0, x, toHost(m.slopes)[0] * x)),
    "crossMapLRN": (lambda: CrossMapLRN(N=3, alpha=0.7, beta=0.75, K=1.5), lambda: rand(2, 6, 3, 2),
                    lambda m, x: lrnOracle(x, 3, 0.7, 0.75, 1.5, (1,))),
    "crossMapLRNEven": (lambda: CrossMapLRN(N=4, alpha=1.3, beta=0.6, K=2.0), lambda: rand(2, 5, 3),
                        lambda m, x: lrnOracle(x, 4, 1.3, 0.6, 2.0, (1,))),
    "mapLRN": (lambda: MapLRN(N=3, alpha=0.9, beta=0.5, K=2.0), lambda: rand(2, 2, 5, 4),
               lambda m, x: lrnOracle(x, 3, 0.9, 0.5, 2.0, (2, 3))),
    "mapLRNEven": (lambda: MapLRN(N=2, alpha=0.9, beta=0.8, K=1.0), lambda: rand(1, 2, 4, 3),
                   lambda m, x: lrnOracle(x, 2, 0.9, 0.8, 1.0, (2, 3))),
    "subtractMean": (lambda: SubtractMean(3), lambda: rand(2, 2, 4, 5),
                     lambda m, x: x - localMeans(x, 3, True)),
    "subtractMeanNoPad": (lambda: SubtractMean(5, includePad=False), lambda: rand(1, 2, 6, 3),
                          lambda m, x: x - localMeans(x, 5, False)),
    "lcn": (lambda: LCN(N=3, alpha=0.8, beta=0.75, K=1.0), lambda: rand(2, 2, 4, 5),
            lambda m, x: lcnOracle(x, 3, 0.8, 0.75, 1.0, True)),
    "lcnNoPad": (lambda: LCN(N=5, alpha=1.1, beta=0.6, K=2.0, includePad=False), lambda: rand(1, 2, 6, 4),
                 lambda m, x: lcnOracle(x, 5, 1.1, 0.6, 2.0, False)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_against_a_float64_formula_and_gradients_numerically(name):
    makeModule, makeInput, oracle = CASES[name]
    module, x = makeModule(), makeInput()
    if name.startswith("prelu"):
        x[numpy.abs(x) < 0.05] += 0.1  # away from the kink at 0
        module.vars["slopes"].data[...] = toDevice(numpy.linspace(0.1, 0.4, module.slopes.size))
    y = toHost(module(toDevice(x)))
    numpy.testing.assert_allclose(y, oracle(module, x), rtol=1e-12, atol=1e-14)
    checkGradients(module, toDevice(x))


@pytest.mark.parametrize("alignCorners", [False, True])
@pytest.mark.parametrize("outShape", [None, (3, 5), (1, 4), (3, 2, 3)])
def test_spatial_tf_against_loops_and_gradients_numerically(alignCorners, outShape):
    x = rand(2, 3, 4, 5)
    theta = numpy.array([[[0.9, 0.2, 0.1], [-0.15, 1.1, -0.05]], [[1.3, -0.3, 0.4], [0.25, 0.7, 0.3]]])
    module = SpatialTf(outShape, alignCorners=alignCorners)
    outShape = outShape[-2:] if outShape else None
    theta = awayFromCells(theta, x, outShape or (4, 5), alignCorners)
    y = toHost(module([toDevice(x), toDevice(theta)]))
    numpy.testing.assert_allclose(y, bilinearOracle(x, theta, outShape or (4, 5), alignCorners), rtol=1e-12,
                                  atol=1e-14)
    checkGradients(module, [toDevice(x), toDevice(theta)])


@pytest.mark.parametrize("mode", ["l1", "l2"])
def test_penalty_is_the_identity_forward_and_adds_its_gradient_backward(mode):
    x = rand(3, 4)
    x[numpy.abs(x) < 0.05] += 0.1
    module, projection = Penalty(mode, weight=0.3), rand(3, 4, seed=2)
    assert toHost(module(toDevice(x))) is not None
    numpy.testing.assert_array_equal(toHost(module.data), x)
    expected = 0.3 / 3 * (numpy.abs(x).sum() if mode == "l1" else (x * x).sum() / 2)
    assert module.penalty() == pytest.approx(expected, rel=1e-12)

    def error(values):
        module(toDevice(values))
        return float((values * projection).sum()) + module.penalty()

    numerical = numpy.zeros_like(x)
    for index in numpy.ndindex(x.shape):
        step = numpy.zeros_like(x)
        step[index] = 1e-6
        numerical[index] = (error(x + step) - error(x - step)) / 2e-6
    module(toDevice(x))
    numpy.testing.assert_allclose(toHost(module.backward(toDevice(projection))), numerical, rtol=1e-6, atol=1e-8)


def test_dropout2d_drops_whole_maps_with_the_device_generator_and_scales_the_rest():
    x = rand(4, 6, 3, 2) + 5
    module = Dropout2D(0.4)
    backend.seed(7)
    y = toHost(module(toDevice(x)))
    uniform = numpy.array([philoxoracle.uniform(7, 0, i) for i in range(24)]).reshape(4, 6)  # the seed's first draw
    keep = (uniform >= numpy.float32(0.4))[:, :, None, None]
    assert 0 < keep.sum() < keep.size
    numpy.testing.assert_allclose(y, numpy.where(keep, x / 0.6, 0), rtol=1e-12)
    grad = rand(4, 6, 3, 2, seed=3)
    numpy.testing.assert_allclose(toHost(module.backward(toDevice(grad))), numpy.where(keep, grad / 0.6, 0),
                                  rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: Dropout2D(0.5).evalMode(), lambda: Dropout2D(0.0),
                                  lambda: NoiseInjector().evalMode()])
def test_random_layers_draw_nothing_in_eval_mode_or_at_p_0(make):
    module, x = make(), toDevice(rand(2, 3, 4))
    backend.seed(11)
    before = backend.getRandomState()
    assert module(x) is x
    assert backend.getRandomState() == before
    grad = toDevice(rand(2, 3, 4, seed=1))
    assert module.backward(grad) is grad


@pytest.mark.parametrize("mode, noiseType, params", [("add", "uniform", (-0.5, 2.0)), ("mul", "gaussian", (1.0, 0.3)),
                                                     ("mul", "uniform", (0.5, 1.5))])
def test_noise_injector_draws_its_noise_from_the_device_generator(mode, noiseType, params):
    x = rand(3, 5)
    module = NoiseInjector(mode, noiseType, params)
    backend.seed(3)
    y = toHost(module(toDevice(x)))
    words = [philoxoracle.philox((i, 0, 0, 0), (3, 0)) for i in range(15)]  # the seed's first draw
    if noiseType == "uniform":
        noise = [params[0] + (params[1] - params[0]) * (w[0] >> 8) / 2**24 for w in words]
    else:  # Box-Muller with u1 in (0, 1], the standard normal rounded to float32
        noise = [params[0] + params[1] * float(numpy.float32(math.sqrt(-2 * math.log(((w[0] >> 8) + 1) / 2**24))
                                                             * math.cos(2 * math.pi * (w[1] >> 8) / 2**24)))
                 for w in words]
    noise = numpy.array(noise).reshape(3, 5)
    numpy.testing.assert_allclose(y, x + noise if mode == "add" else x * noise, rtol=1e-12)
    grad = rand(3, 5, seed=4)
    numpy.testing.assert_allclose(toHost(module.backward(toDevice(grad))), grad if mode == "add" else grad * noise,
                                  rtol=1e-12)


class Reseeded:
    """Gradient checks of a random layer in trainMode: the generator is reseeded before each forward pass, so
    every pass draws the same mask or noise."""

    @staticmethod
    def wrap(module):
        forward = module.updData

        def updData(data):
            backend.seed(5)
            return forward(data)

        module.updData = updData
        return module


@pytest.mark.parametrize("make", [lambda: Dropout2D(0.3), lambda: NoiseInjector("mul", "gaussian", (1.0, 0.5)),
                                  lambda: NoiseInjector("add", "uniform", (0.0, 1.0))])
def test_random_layers_gradients_numerically_in_train_mode(make):
    checkGradients(Reseeded.wrap(make()), toDevice(rand(2, 3, 2, 2)))


@pytest.mark.parametrize("call, message", [
    (lambda: PRelu(3)(toDevice(numpy.zeros((2, 4), numpy.float32))), r"shape \(batch, 3, \.\.\.\)"),
    (lambda: PRelu(3)(toDevice(numpy.zeros((2, 3)))), "dtype float32"),
    (lambda: PRelu(0), "maps must be an integer >= 1"),
    (lambda: Penalty("l3"), "mode must be 'l1' or 'l2'"),
    (lambda: Penalty(weight=-1), "weight"),
    (lambda: Penalty().penalty(), "before a forward pass"),
    (lambda: Dropout2D(1.0), "probability p"),
    (lambda: Dropout2D()(toDevice(numpy.zeros((2, 3), numpy.float32))), "at least one spatial axis"),
    (lambda: NoiseInjector("sub"), "mode must be 'add' or 'mul'"),
    (lambda: NoiseInjector(noiseType="poisson"), "noiseType"),
    (lambda: NoiseInjector(params=(1.0, 0.0)), r"params\[1\]"),
    (lambda: NoiseInjector(noiseType="gaussian", params=(0.0, -1.0)), "sigma"),
    (lambda: CrossMapLRN(N=0), "window size N"),
    (lambda: CrossMapLRN(K=0), "K"),
    (lambda: CrossMapLRN()(toDevice(numpy.zeros((2, 3), numpy.float32))), "3 or 4 or 5 dimensions"),
    (lambda: MapLRN()(toDevice(numpy.zeros((2, 3, 4), numpy.float32))), "4 dimensions"),
    (lambda: LCN(N=4), "odd and > 1"),
    (lambda: SubtractMean(1), "odd and > 1"),
    (lambda: SubtractMean(includePad=1), "includePad"),
    (lambda: SpatialTf((3,)), "height, width"),
    (lambda: SpatialTf((2, 3, 3))([toDevice(numpy.zeros((2, 1, 3, 3), numpy.float32)),
                                   toDevice(numpy.zeros((2, 2, 3), numpy.float32))]), "must have 2 maps"),
    (lambda: SpatialTf()(toDevice(numpy.zeros((2, 1, 3, 3), numpy.float32))), r"list \[x, theta\]"),
    (lambda: SpatialTf()([toDevice(numpy.zeros((2, 1, 3, 3), numpy.float32)),
                          toDevice(numpy.zeros((2, 3, 2), numpy.float32))]), r"theta must have shape \(2, 2, 3\)"),
])
def test_bad_input_names_what_was_expected(call, message):
    with pytest.raises(ModuleError, match=message):
        call()


def test_prelu_leaves_its_slopes_unchanged_when_the_input_is_refused():
    module = PRelu(3)
    before = toHost(module.slopes).copy()
    with pytest.raises(ModuleError):
        module(toDevice(numpy.zeros((2, 5), numpy.float32)))
    numpy.testing.assert_array_equal(toHost(module.slopes), before)


@pytest.mark.parametrize("dtype, rtol", [(numpy.float32, 1e-5), (numpy.float16, 4e-3)])
@pytest.mark.parametrize("name", ["prelu", "crossMapLRN", "mapLRN", "subtractMeanNoPad", "lcn", "spatialTf",
                                  "penalty"])
def test_lower_precisions_compute_like_float64(name, dtype, rtol):
    """Output and input gradient in float32 and float16 (statistics in float32 at least) against float64."""
    def make(precision):
        if name == "spatialTf":
            return SpatialTf((3, 4)), [rand(2, 2, 4, 5).astype(precision),
                                       numpy.array([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]]] * 2).astype(precision)]
        if name == "penalty":
            return Penalty("l1", 0.5), rand(2, 3, 4).astype(precision)
        if name == "prelu":
            return PRelu(3, dtype=precision), rand(2, 3, 4, 5).astype(precision)
        module = CASES[name][0]()
        return module, CASES[name][1]().astype(precision)

    results = []
    for precision in (numpy.float64, dtype):
        module, x = make(precision)
        inputs = [toDevice(item) for item in x] if isinstance(x, list) else toDevice(x)
        y = module(inputs)
        assert y.dtype == precision
        grad = module.backward(toDevice(rand(*y.shape, seed=9).astype(precision)))
        grads = grad if isinstance(grad, list) else [grad]
        assert all(g.dtype == precision for g in grads)
        results.append([toHost(y).astype(numpy.float64)] + [toHost(g).astype(numpy.float64) for g in grads])
    for exact, low in zip(*results):
        scale = numpy.abs(exact).max()
        numpy.testing.assert_allclose(low, exact, rtol=rtol, atol=rtol * scale)
