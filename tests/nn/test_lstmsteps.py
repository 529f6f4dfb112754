"""An LSTM direction's fused step loops on the CPU (minidl.nn.lstmsteps): forward and backward against float64 loops
written from the equations (every block and row tail, both dtypes, both directions, NaN and infinities drawn into
the data, the cell state and the gradient), the same bits on one thread as on two, the RNN through them against its
per-step path and numerical gradients, and recorded and replayed by a tape."""


import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.backend import toHost, xp
from minidl.nn import RNN, rnn
from minidl.nn.lstmsteps import lstmBackwardSteps, lstmForwardSteps
from minidl.testing import checkGradients
from tests.tapereplay import assertReplaysOnNewData
from tests.threaddigest import assertSameBitsOnOneThreadAsOnTwo

pytestmark = pytest.mark.skipif(not rnn.fused(numpy.float32, 1, 1),
                                reason="the fused step loops run on the CPU with compiled kernels only")
TOLERANCE = {numpy.float32: {"rtol": 2e-4, "atol": 2e-5}, numpy.float64: {"rtol": 1e-11, "atol": 1e-12}}


def sigmoid(a):
    with numpy.errstate(over="ignore"):  # exp(-a) of a = -inf: 1 / inf = 0, as the kernel gives
        return 1 / (1 + numpy.exp(-a))


def forwardOracle(xproj, wHh, bih, bhh, h0, c0, reverse):
    """hs, cs (steps + 1, batch, H) and the activated gates (steps, batch, 4H), in processing order, in float64."""
    steps, hsize = xproj.shape[0], h0.shape[1]
    hs, cs, gates = [h0], [c0], []
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        a = xproj[t] + bih + hs[-1] @ wHh.T + bhh
        i, f, g, o = (a[:, k * hsize:(k + 1) * hsize] for k in range(4))
        i, f, g, o = sigmoid(i), sigmoid(f), numpy.tanh(g), sigmoid(o)
        cs.append(f * cs[-1] + i * g)
        hs.append(o * numpy.tanh(cs[-1]))
        gates.append(numpy.concatenate([i, f, g, o], axis=1))
    return numpy.stack(hs), numpy.stack(cs), numpy.stack(gates)


def backwardOracle(dOut, wHh, cs, gates, dhLast, reverse):
    """(∂h₀, ∂c₀, ∂a per step in time order) by the chain rule through the float64 forward's values."""
    steps, hsize = dOut.shape[0], dOut.shape[2]
    dh, dc = dhLast, numpy.zeros_like(dhLast)
    dgates = numpy.empty(gates.shape)
    for s in reversed(range(steps)):
        t = steps - 1 - s if reverse else s
        i, f, g, o = (gates[s][:, k * hsize:(k + 1) * hsize] for k in range(4))
        dhTotal = dOut[t] + dh
        tanhC = numpy.tanh(cs[s + 1])
        dcTotal = dc + dhTotal * o * (1 - tanhC ** 2)
        dgates[s] = numpy.concatenate([dcTotal * g * i * (1 - i), dcTotal * cs[s] * f * (1 - f),
                                       dcTotal * i * (1 - g ** 2), dhTotal * tanhC * o * (1 - o)], axis=1)
        dc = dcTotal * f
        dh = dgates[s] @ wHh
    return dh, dc, dgates[::-1] if reverse else dgates


def draw(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def plant(rng, array, values):
    """``values`` at distinct random places of ``array`` (as many as it holds)."""
    flat = array.reshape(-1)
    count = min(len(values), flat.size)
    flat[rng.choice(flat.size, size=count, replace=False)] = values[:count]


SPECIAL = (numpy.nan, numpy.inf, -numpy.inf)


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 4), batch=st.integers(1, 9), hsize=st.sampled_from([1, 5, 8, 16, 20, 33, 64, 70]),
       dtype=st.sampled_from([numpy.float32, numpy.float64]), reverse=st.booleans(), special=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_fused_steps_match_float64_loops(steps, batch, hsize, dtype, reverse, special, seed):
    """Whole vectors of units and a tail, 4-row blocks and single rows, forward and backward; with ``special``, NaN
    and ±inf in the input projections, the initial cell state and the output gradient (the gates they saturate are
    exactly 0 or 1 in either dtype, so the oracle's NaN and infinities fall where the kernel's do)."""
    rng = numpy.random.default_rng(seed)
    xproj, dOut = draw(rng, (steps, batch, 4 * hsize), dtype), draw(rng, (steps, batch, hsize), dtype)
    wHh = draw(rng, (4 * hsize, hsize), dtype, 1 / numpy.sqrt(hsize))
    bih, bhh = draw(rng, 4 * hsize, dtype), draw(rng, 4 * hsize, dtype)
    h0, c0, dhLast = (draw(rng, (batch, hsize), dtype) for _ in range(3))
    if special:
        for array in (xproj, c0, dOut):
            plant(rng, array, SPECIAL)
    hs, cs = numpy.empty((2, steps + 1, batch, hsize), dtype)
    hs[0], cs[0] = h0, c0
    gates = numpy.empty((steps, batch, 4 * hsize), dtype)
    lstmForwardSteps(xproj, wHh, bih, bhh, hs, cs, gates, reverse)
    wide = [array.astype(numpy.float64) for array in (xproj, wHh, bih, bhh, h0, c0)]
    with numpy.errstate(invalid="ignore"):  # NaN and infinities meeting, as in the kernel
        expected = forwardOracle(*wide, reverse)
    for got, want in zip((hs, cs, gates), expected):
        numpy.testing.assert_allclose(got, want, **TOLERANCE[dtype])
    dh, dc, dgates = dhLast.copy(), numpy.zeros_like(dhLast), numpy.empty_like(gates)
    before = draw(rng, 4 * hsize, dtype)
    dbias = before.copy()
    lstmBackwardSteps(dOut, wHh, cs, gates, dh, dc, dgates, dbias, reverse)
    # through the kernel's own forward values, so that the check is of the backward loop alone
    with numpy.errstate(invalid="ignore"):
        expected = backwardOracle(dOut.astype(numpy.float64), wide[1], cs.astype(numpy.float64),
                                  gates.astype(numpy.float64), dhLast.astype(numpy.float64), reverse)
    for got, want in zip((dh, dc, dgates), expected):
        numpy.testing.assert_allclose(got, want, **TOLERANCE[dtype])
    numpy.testing.assert_allclose(dbias, before + expected[2].sum(axis=(0, 1)), **TOLERANCE[dtype])


def test_the_loops_take_what_they_run_faster():
    """Any hidden size up to 64 batch rows; beyond, Wₕₕ of 2 MiB at most (the per-step products block larger ones
    for the cache). float16 never (the RNN computes in float32 or float64)."""
    assert rnn.fused(numpy.float32, 64, 1024) and rnn.fused(numpy.float32, 4096, 362)
    assert not rnn.fused(numpy.float32, 65, 363) and not rnn.fused(numpy.float64, 128, 257)
    assert rnn.fused(numpy.float64, 128, 256) and not rnn.fused(numpy.float16, 8, 8)


def test_a_nan_in_one_unit_stays_in_its_units():
    """A NaN input projection poisons its unit's state and, through Wₕₕ, every unit of its batch row the next step;
    the other rows stay finite (no row or block reads another's values)."""
    rng = numpy.random.default_rng(1)
    steps, batch, hsize = 3, 6, 20
    xproj = draw(rng, (steps, batch, 4 * hsize), numpy.float32)
    xproj[0, 2, 5] = numpy.nan
    wHh = draw(rng, (4 * hsize, hsize), numpy.float32, 0.2)
    hs, cs = numpy.zeros((2, steps + 1, batch, hsize), numpy.float32)
    gates = numpy.empty((steps, batch, 4 * hsize), numpy.float32)
    zeros = numpy.zeros(4 * hsize, numpy.float32)
    lstmForwardSteps(xproj, wHh, zeros, zeros, hs, cs, gates, False)
    assert numpy.isnan(hs[1, 2, 5]) and numpy.isfinite(numpy.delete(hs[1, 2], 5)).all()
    assert numpy.isnan(hs[2, 2]).all()
    assert numpy.isfinite(numpy.delete(hs, 2, axis=1)).all()


def test_the_loops_refuse_arrays_out_of_c_order():
    rng = numpy.random.default_rng(2)
    wHh = draw(rng, (2, 8), numpy.float32)
    hs, cs = numpy.zeros((2, 2, 3, 2), numpy.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        lstmForwardSteps(numpy.zeros((1, 3, 8), numpy.float32), wHh.T, numpy.zeros(8, numpy.float32),
                         numpy.zeros(8, numpy.float32), hs, cs, numpy.zeros((1, 3, 8), numpy.float32), False)
    assert not hs.any() and not cs.any()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_rnn_through_the_fused_loops_matches_its_per_step_path(dtype, monkeypatch):
    """Two bidirectional layers with initial states, shapes of whole vectors and blocks (the benchmark's hidden
    size): the output, final states and every gradient as the per-step products and kernels give them."""
    results = []
    for fusedSteps in (True, False):
        monkeypatch.setattr(rnn, "fused", lambda *_, value=fusedSteps: value)
        module = RNN(24, 128, layers=2, direction="bi", getSequences=True, dtype=dtype)
        for index, var in enumerate(module.vars.values()):
            var.data[...] = draw(numpy.random.default_rng(index), var.data.shape, dtype, 1 / numpy.sqrt(128))
        rng = numpy.random.default_rng(3)
        inputs = [xp.asarray(draw(rng, (5, 9, 24), dtype)), xp.asarray(draw(rng, (4, 9, 128), dtype)),
                  xp.asarray(draw(rng, (4, 9, 128), dtype))]
        out = module(inputs)
        grads = module.backward(xp.asarray(draw(rng, out.shape, dtype)))
        results.append([toHost(out), toHost(module.hn), toHost(module.cn)] + [toHost(g) for g in grads]
                       + [toHost(var.grad) for var in module.vars.values()])
    for got, want in zip(*results):
        numpy.testing.assert_allclose(got, want, rtol=1e-5 if dtype == numpy.float32 else 1e-12,
                                      atol=1e-6 if dtype == numpy.float32 else 1e-13)


@pytest.mark.parametrize("direction", ["uni", "bi"])
def test_rnn_through_the_fused_loops_has_the_numerical_gradients(direction, monkeypatch):
    """float64, two layers with initial states: 9 batch rows (two groups of four and one row) of 20 units (two vectors
    of units and a tail), every weight's, input's and initial state's gradient against central differences."""
    calls = []
    monkeypatch.setattr(rnn, "lstmBackwardSteps", lambda *args, **kwargs: calls.append(1) or lstmBackwardSteps(
        *args, **kwargs))
    module = RNN(3, 20, layers=2, direction=direction, getSequences=True, dtype=numpy.float64)
    rng = numpy.random.default_rng(8)
    states = (2 * module.dirs, 9, 20)
    checkGradients(module, [xp.asarray(rng.standard_normal((4, 9, 3))), xp.asarray(rng.standard_normal(states)),
                            xp.asarray(rng.standard_normal(states))])
    assert calls  # the gradients came through the fused loops


def test_a_tape_replays_the_fused_loops_on_new_data():
    rng = numpy.random.default_rng(4)
    module = RNN(6, 20, getSequences=True)
    assertReplaysOnNewData(module, [draw(rng, (4, 3, 6), numpy.float32)], [draw(rng, (4, 3, 6), numpy.float32)],
                           "lstm_forward_steps")


DIGEST = """
import hashlib, numpy
from minidl.nn.lstmsteps import lstmBackwardSteps, lstmForwardSteps
from minidl.testing import checkGradients
rng = numpy.random.default_rng(6)
steps, batch, hsize = 5, 30, 40
draw = lambda *shape: rng.standard_normal(shape).astype(numpy.float32)
xproj, wHh, bih, bhh, dOut = draw(steps, batch, 4 * hsize), draw(4 * hsize, hsize), draw(4 * hsize), draw(4 * hsize), \\
    draw(steps, batch, hsize)
hs, cs = numpy.zeros((2, steps + 1, batch, hsize), numpy.float32)
gates, dgates = numpy.empty((2, steps, batch, 4 * hsize), numpy.float32)
dh, dc, dbias = draw(batch, hsize), numpy.zeros((batch, hsize), numpy.float32), numpy.zeros(4 * hsize, numpy.float32)
lstmForwardSteps(xproj, wHh, bih, bhh, hs, cs, gates, True)
lstmBackwardSteps(dOut, wHh, cs, gates, dh, dc, dgates, dbias, True)
print(hashlib.sha256(b"".join(a.tobytes() for a in (hs, cs, gates, dh, dc, dgates, dbias))).hexdigest())
"""


def test_the_loops_give_the_same_bits_on_one_thread_as_on_two():
    """Each value is made by one range of batch rows in one order, whichever threads run the ranges."""
    assertSameBitsOnOneThreadAsOnTwo(DIGEST)
