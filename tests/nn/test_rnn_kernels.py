"""The RNN step kernels: CPU path against float64 formulas of each mode's step, other paths against the CPU. The
lstm and gru kernels are drawn with every span of units per element (1, hsize, the divisors between): the CPU
runs them compiled with span = hsize, a GPU with span = 1."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn import rnnkernels
from minidl.testing import arrays, checkKernel, floatDtypes, rowLengths, spans


def sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


def split(array, count):
    return numpy.split(array, count, axis=1)


@st.composite
def sizes(draw):
    return draw(floatDtypes()), draw(st.integers(1, 4)), draw(st.integers(1, 5))


@st.composite
def stepSizes(draw):
    """(dtype, batch, hsize, span) of an lstm or gru step kernel, span a divisor of hsize (1 and hsize included),
    hsize long enough at times for whole vectors of the compiled loop (``rowLengths``)."""
    dtype, batch = draw(floatDtypes()), draw(st.integers(1, 4))
    hsize = draw(rowLengths())
    return dtype, batch, hsize, draw(spans(hsize))


def stepElements(args):
    """The loop's size of an lstm or gru step kernel's call: batch·hsize / span (its first argument has one row
    per batch row; hsize and span are its int arguments)."""
    hsize, span = (arg for arg in args if isinstance(arg, int))
    return args[0].shape[0] * hsize // span


@st.composite
def lstmForwardCases(draw):
    dtype, batch, hsize, span = draw(stepSizes())
    xproj, hproj = (draw(arrays(dtype, (batch, 4 * hsize))) for _ in range(2))
    bih, bhh = (draw(arrays(dtype, (4 * hsize,))) for _ in range(2))
    cPrev = draw(arrays(dtype, (batch, hsize)))
    nans = [numpy.full((batch, hsize), numpy.nan, dtype) for _ in range(2)]
    return dtype, [xproj, hproj, bih, bhh, cPrev, hsize, span, *nans, numpy.full((batch, 4 * hsize), numpy.nan, dtype)]


def lstmForwardOracle(xproj, hproj, bih, bhh, cPrev, hsize, span, c, h, gates):
    ai, af, ag, ao = split((xproj + bih) + (hproj + bhh), 4)
    i, f, g, o = sigmoid(ai), sigmoid(af), numpy.tanh(ag), sigmoid(ao)
    cNew = f * cPrev + i * g
    return [cNew, o * numpy.tanh(cNew), numpy.concatenate([i, f, g, o], axis=1)]


@st.composite
def lstmGradCases(draw):
    dtype, batch, hsize, span = draw(stepSizes())
    dhOut, dhNext, dcNext, c, cPrev = (draw(arrays(dtype, (batch, hsize))) for _ in range(5))
    gates = numpy.concatenate([draw(arrays(dtype, (batch, hsize), 0, 1)), draw(arrays(dtype, (batch, hsize), 0, 1)),
                               draw(arrays(dtype, (batch, hsize), -1, 1)), draw(arrays(dtype, (batch, hsize), 0, 1))],
                              axis=1)
    return dtype, [dhOut, dhNext, dcNext, c, cPrev, gates, hsize, span, numpy.full_like(c, numpy.nan),
                   numpy.full_like(gates, numpy.nan)]


def lstmGradOracle(dhOut, dhNext, dcNext, c, cPrev, gates, hsize, span, dcPrev, dgates):
    i, f, g, o = split(gates, 4)
    dh = dhOut + dhNext
    dc = dcNext + dh * o * (1 - numpy.tanh(c) ** 2)
    grads = [dc * g * i * (1 - i), dc * cPrev * f * (1 - f), dc * i * (1 - g ** 2), dh * numpy.tanh(c) * o * (1 - o)]
    return [dc * f, numpy.concatenate(grads, axis=1)]


@st.composite
def gruForwardCases(draw):
    dtype, batch, hsize, span = draw(stepSizes())
    xproj, hproj = (draw(arrays(dtype, (batch, 3 * hsize))) for _ in range(2))
    bih, bhh = (draw(arrays(dtype, (3 * hsize,))) for _ in range(2))
    hPrev = draw(arrays(dtype, (batch, hsize)))
    return dtype, [xproj, hproj, bih, bhh, hPrev, hsize, span, numpy.full_like(hPrev, numpy.nan),
                   numpy.full((batch, 4 * hsize), numpy.nan, dtype)]


def gruForwardOracle(xproj, hproj, bih, bhh, hPrev, hsize, span, h, gates):
    xr, xz, xn = split(xproj + bih, 3)
    hr, hz, hn = split(hproj + bhh, 3)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = numpy.tanh(xn + r * hn)
    return [(1 - z) * n + z * hPrev, numpy.concatenate([r, z, n, hn], axis=1)]


@st.composite
def gruGradCases(draw):
    dtype, batch, hsize, span = draw(stepSizes())
    dhOut, dhNext, hPrev = (draw(arrays(dtype, (batch, hsize))) for _ in range(3))
    gates = numpy.concatenate([draw(arrays(dtype, (batch, hsize), 0, 1)), draw(arrays(dtype, (batch, hsize), 0, 1)),
                               draw(arrays(dtype, (batch, hsize), -1, 1)), draw(arrays(dtype, (batch, hsize)))], axis=1)
    gateGrads = [numpy.full((batch, 3 * hsize), numpy.nan, dtype) for _ in range(2)]
    return dtype, [dhOut, dhNext, hPrev, gates, hsize, span, numpy.full_like(hPrev, numpy.nan), *gateGrads]


def gruGradOracle(dhOut, dhNext, hPrev, gates, hsize, span, dhPrev, dxgates, dhgates):
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


# relu's gradient selects (0 where h <= 0, whatever the incoming gradient): a NaN there need not reach it. The lstm and
# gru kernels have only raw arrays, which nanPropagates does not read: the oracle holds their NaN positions exactly.
SELECTING = {"reluGrad"}

CASES = {  # name: kernel, cases, oracle, the loop's size of a call (kernels whose arrays are all raw)
    "lstmForward": (rnnkernels.lstmForwardKer, lstmForwardCases(), lstmForwardOracle, stepElements),
    "lstmGrad": (rnnkernels.lstmGradKer, lstmGradCases(), lstmGradOracle, stepElements),
    "gruForward": (rnnkernels.gruForwardKer, gruForwardCases(), gruForwardOracle, stepElements),
    "gruGrad": (rnnkernels.gruGradKer, gruGradCases(), gruGradOracle, stepElements),
    "reluForward": (rnnkernels.reluForwardKer, simpleCases(False), reluForwardOracle, None),
    "reluGrad": (rnnkernels.reluGradKer, simpleCases(True), reluGradOracle, None),
    "tanhForward": (rnnkernels.tanhForwardKer, simpleCases(False), tanhForwardOracle, None),
    "tanhGrad": (rnnkernels.tanhGradKer, simpleCases(True), tanhGradOracle, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle, size = CASES[name]
    checkKernel(kernel, cases, oracle, nanPropagates=name not in SELECTING, size=size)
