"""The RNN step kernels: CPU path against float64 formulas of each mode's step, other paths against the CPU."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn import rnnkernels
from minidl.testing import arrays, checkKernel, floatDtypes


def sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


def split(array, count):
    return numpy.split(array, count, axis=1)


@st.composite
def sizes(draw):
    return draw(floatDtypes()), draw(st.integers(1, 4)), draw(st.integers(1, 5))


@st.composite
def lstmForwardCases(draw):
    dtype, batch, hsize = draw(sizes())
    xproj, hproj = (draw(arrays(dtype, (batch, 4 * hsize))) for _ in range(2))
    cPrev = draw(arrays(dtype, (batch, hsize)))
    nans = [numpy.full((batch, hsize), numpy.nan, dtype) for _ in range(2)]
    return dtype, [xproj, hproj, cPrev, hsize, *nans, numpy.full((batch, 4 * hsize), numpy.nan, dtype)]


def lstmForwardOracle(xproj, hproj, cPrev, hsize, c, h, gates):
    ai, af, ag, ao = split(xproj + hproj, 4)
    i, f, g, o = sigmoid(ai), sigmoid(af), numpy.tanh(ag), sigmoid(ao)
    cNew = f * cPrev + i * g
    return [cNew, o * numpy.tanh(cNew), numpy.concatenate([i, f, g, o], axis=1)]


@st.composite
def lstmGradCases(draw):
    dtype, batch, hsize = draw(sizes())
    dhOut, dhNext, dcNext, c, cPrev = (draw(arrays(dtype, (batch, hsize))) for _ in range(5))
    gates = numpy.concatenate([draw(arrays(dtype, (batch, hsize), 0, 1)), draw(arrays(dtype, (batch, hsize), 0, 1)),
                               draw(arrays(dtype, (batch, hsize), -1, 1)), draw(arrays(dtype, (batch, hsize), 0, 1))],
                              axis=1)
    return dtype, [dhOut, dhNext, dcNext, c, cPrev, gates, hsize, numpy.full_like(c, numpy.nan),
                   numpy.full_like(gates, numpy.nan)]


def lstmGradOracle(dhOut, dhNext, dcNext, c, cPrev, gates, hsize, dcPrev, dgates):
    i, f, g, o = split(gates, 4)
    dh = dhOut + dhNext
    dc = dcNext + dh * o * (1 - numpy.tanh(c) ** 2)
    grads = [dc * g * i * (1 - i), dc * cPrev * f * (1 - f), dc * i * (1 - g ** 2), dh * numpy.tanh(c) * o * (1 - o)]
    return [dc * f, numpy.concatenate(grads, axis=1)]


@st.composite
def gruForwardCases(draw):
    dtype, batch, hsize = draw(sizes())
    xproj, hproj = (draw(arrays(dtype, (batch, 3 * hsize))) for _ in range(2))
    hPrev = draw(arrays(dtype, (batch, hsize)))
    return dtype, [xproj, hproj, hPrev, hsize, numpy.full_like(hPrev, numpy.nan),
                   numpy.full((batch, 4 * hsize), numpy.nan, dtype)]


def gruForwardOracle(xproj, hproj, hPrev, hsize, h, gates):
    xr, xz, xn = split(xproj, 3)
    hr, hz, hn = split(hproj, 3)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = numpy.tanh(xn + r * hn)
    return [(1 - z) * n + z * hPrev, numpy.concatenate([r, z, n, hn], axis=1)]


@st.composite
def gruGradCases(draw):
    dtype, batch, hsize = draw(sizes())
    dhOut, dhNext, hPrev = (draw(arrays(dtype, (batch, hsize))) for _ in range(3))
    gates = numpy.concatenate([draw(arrays(dtype, (batch, hsize), 0, 1)), draw(arrays(dtype, (batch, hsize), 0, 1)),
                               draw(arrays(dtype, (batch, hsize), -1, 1)), draw(arrays(dtype, (batch, hsize)))], axis=1)
    gateGrads = [numpy.full((batch, 3 * hsize), numpy.nan, dtype) for _ in range(2)]
    return dtype, [dhOut, dhNext, hPrev, gates, hsize, numpy.full_like(hPrev, numpy.nan), *gateGrads]


def gruGradOracle(dhOut, dhNext, hPrev, gates, hsize, dhPrev, dxgates, dhgates):
    r, z, n, hn = split(gates, 4)
    dh = dhOut + dhNext
    dan = dh * (1 - z) * (1 - n ** 2)
    dar, daz = dan * hn * r * (1 - r), dh * (hPrev - n) * z * (1 - z)
    return [dh * z, numpy.concatenate([dar, daz, dan], axis=1), numpy.concatenate([dar, daz, dan * r], axis=1)]


def simpleCases(backward):
    @st.composite
    def cases(draw):
        dtype, batch, hsize = draw(sizes())
        values = [draw(arrays(dtype, (batch, hsize))) for _ in range(3 if backward else 2)]
        if draw(st.booleans()):
            values[-1].flat[0] = numpy.nan  # NaN propagates as IEEE arithmetic would
        return dtype, [*values, numpy.full((batch, hsize), numpy.nan, dtype)]

    return cases()


def reluForwardOracle(xproj, hproj, h):
    a = xproj + hproj
    return [numpy.where(a <= 0, 0.0, a)]


def reluGradOracle(dhOut, dhNext, h, dgates):
    return [numpy.where(h <= 0, 0.0, dhOut + dhNext)]


def tanhForwardOracle(xproj, hproj, h):
    return [numpy.tanh(xproj + hproj)]


def tanhGradOracle(dhOut, dhNext, h, dgates):
    return [(dhOut + dhNext) * (1 - h * h)]


# outputs that do not read every elementwise input (lstm's ∂c₋ needs no c₋, gru's ∂h₋ no h₋), or select
# (relu's gradient is 0 where h <= 0, whatever the incoming gradient): a NaN there need not reach them
SELECTING = {"lstmGrad", "gruGrad", "reluGrad"}

CASES = {
    "lstmForward": (rnnkernels.lstmForwardKer, lstmForwardCases(), lstmForwardOracle),
    "lstmGrad": (rnnkernels.lstmGradKer, lstmGradCases(), lstmGradOracle),
    "gruForward": (rnnkernels.gruForwardKer, gruForwardCases(), gruForwardOracle),
    "gruGrad": (rnnkernels.gruGradKer, gruGradCases(), gruGradOracle),
    "reluForward": (rnnkernels.reluForwardKer, simpleCases(False), reluForwardOracle),
    "reluGrad": (rnnkernels.reluGradKer, simpleCases(True), reluGradOracle),
    "tanhForward": (rnnkernels.tanhForwardKer, simpleCases(False), tanhForwardOracle),
    "tanhGrad": (rnnkernels.tanhGradKer, simpleCases(True), tanhGradOracle),
}



@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle = CASES[name]
    checkKernel(kernel, cases, oracle, nanPropagates=name not in SELECTING)
