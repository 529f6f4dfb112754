"""The kernels of PRelu (forward, gradient), Penalty (gradient), Dropout2D (map mask) and L1Hinge (pair gradient):
the NumPy reference against float64 oracles, the other paths against the reference, with NaN, infinities,
signed zeros and subnormals drawn."""

import numpy
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from minidl.cost.l1hinge import l1HingeGradKer
from minidl.nn.dropout2d import dropout2dKer
from minidl.nn.penalty import penaltyGradKer
from minidl.nn.prelu import preluGradKer, preluKer
from minidl.testing import arrays, checkKernel, floatDtypes
from tests import philoxoracle
from tests.nn.test_layer_kernels import dropoutArguments, mapShapes


def perElement(values, maps, spatial, shape):
    """A per-map value for each element of a (N, maps, spatial) array of ``shape``."""
    batch = int(numpy.prod(shape)) // (maps * spatial)
    return numpy.broadcast_to(values.reshape(1, maps, 1), (batch, maps, spatial)).reshape(shape)


@st.composite
def preluCases(draw, withGrad):
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    if draw(st.booleans()):
        maps, spatial = 1, 1  # sharedMaps: one slope for every element
    slopes = draw(arrays(dtype, (maps,), -1.0, 1.0))
    x = draw(arrays(dtype, shape))
    head = [draw(arrays(dtype, shape)), x] if withGrad else [x]
    return dtype, head + [slopes, maps, spatial, numpy.full(shape, numpy.nan, dtype)]


def preluOracle(x, slopes, maps, spatial, y):
    return [numpy.where(x > 0, x, perElement(slopes, maps, spatial, x.shape) * x)]


def preluGradOracle(grad, x, slopes, maps, spatial, ingrad):
    slope = perElement(slopes, maps, spatial, x.shape)
    return [numpy.where(x > 0, grad, numpy.where(numpy.isnan(x), x, slope * grad))]


def penaltyOracle(grad, x, scale, l1, ingrad):
    direction = numpy.where(x == 0, x * 0, numpy.sign(x)) if l1 else x
    return [grad + direction * scale]


@st.composite
def dropout2dCases(draw):
    dtype, (shape, _, spatial) = draw(floatDtypes()), draw(mapShapes())
    x = draw(arrays(dtype, shape))
    return dtype, dropoutArguments(draw, x) + [spatial, numpy.full_like(x, numpy.nan)]


def dropout2dOracle(x, seed, counter, p, scale, spatial, y):
    uniform = numpy.array([philoxoracle.uniform(seed, counter, i) for i in range(x.size // spatial)])
    keep = numpy.repeat(uniform >= p, spatial).reshape(x.shape)
    return [x * numpy.where(keep, 1 / (1 - p), 0.0)]


@st.composite
def l1HingeCases(draw):
    dtype = draw(floatDtypes())
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 6)))
    x1, x2 = draw(arrays(dtype, shape, -2.0, 2.0)), draw(arrays(dtype, shape, -2.0, 2.0))
    labels = numpy.array(draw(st.lists(st.integers(0, 1), min_size=shape[0], max_size=shape[0])), numpy.int32)
    # the hinge's edge, |x1 - x2| = 1: the kernel rounds the difference in its dtype, the float64 oracle does not, so
    # a difference within rounding of 1 (1e-5 - -0.99999 is 1 in float32, 0.99999999747 in float64) is on either side
    with numpy.errstate(invalid="ignore", over="ignore"):
        nearEdge = numpy.abs(numpy.abs(x1.astype(numpy.float64) - x2.astype(numpy.float64)) - 1) < 1e-3
    assume(not nearEdge.any())
    scale = float(numpy.dtype(dtype).type(1 / x1.size))
    return dtype, [x1, x2, labels, shape[1], scale, numpy.full_like(x1, numpy.nan), numpy.full_like(x1, numpy.nan)]


def l1HingeOracle(x1, x2, labels, width, scale, grad1, grad2):
    d = x1 - x2
    sign = numpy.where(d == 0, d * 0, numpy.sign(d))
    similar = (labels != 0)[:, None]
    grad = numpy.where(similar, sign * scale,
                       numpy.where(numpy.abs(d) < 1, -sign * scale, numpy.where(numpy.isnan(d), d, 0.0)))
    return [grad, -grad]


CASES = {
    "prelu": (preluKer, preluCases(False), preluOracle),
    "preluGrad": (preluGradKer, preluCases(True), preluGradOracle),
    "penaltyGrad": (penaltyGradKer, None, penaltyOracle),
    "dropout2d": (dropout2dKer, dropout2dCases(), dropout2dOracle),
    "l1HingeGrad": (l1HingeGradKer, l1HingeCases(), l1HingeOracle),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle = CASES[name]
    checkKernel(kernel, cases, oracle)
