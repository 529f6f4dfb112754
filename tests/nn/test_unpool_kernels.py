"""The gather kernels of max unpooling: MaxPool2D's backward (and MaxUnpool2D's forward) one pixel per element,
as a GPU runs it, and MaxUnpool2D's backward, one output position per element. NaN, infinities and signed
zeros among the values; every path against the NumPy reference and the reference against float64 loops."""

import numpy
from hypothesis import strategies as st

from minidl.nn.maxpool2d import maxUnpoolGatherKer
from minidl.nn.maxunpool2d import maxGatherKer
from minidl.testing import arrays, checkKernel, floatDtypes
from tests.nn.test_window_kernels import geometries, maxUnpoolCases, maxUnpoolOracle, winners, winningTaps


def test_max_unpool_gathered_per_pixel():
    """The same sums as the plane-by-plane kernel: each output's gradient at the pixel its winning tap read."""
    checkKernel(maxUnpoolGatherKer, maxUnpoolCases(), maxUnpoolOracle)


@st.composite
def maxGatherCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, *_, outH, outW = geometry
    grad = draw(arrays(dtype, (batch, maps, h, w)))
    out = numpy.full((batch, maps, outH, outW), numpy.nan, dtype)
    return dtype, [grad, winningTaps(draw, geometry), *geometry, out]


def maxGatherOracle(grad, argmax, *geometryAndOut):
    """Each output position reads the gradient of the pixel its winning tap read (0 where that tap was padding)."""
    *geometry, gradY = geometryAndOut
    out = numpy.zeros(gradY.shape)
    for position, pixel in winners(argmax, geometry):
        out[position] = grad[pixel]
    return [out]


def test_max_gather():
    checkKernel(maxGatherKer, maxGatherCases(), maxGatherOracle, nanPropagates=False)
