"""Gradient hooks: each kernel on every path (CPU against a float64 oracle, other paths against the CPU), and the
hooks as an optimizer runs them: the global norm over every Variable and dtype, ``wc`` per Variable, the order."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl import OptimizerError
from minidl.backend import toDevice, toHost
from minidl.nn import Linear, Sequential
from minidl.optim import SGD
from minidl.optim.hooks import GradientClip, GradientHardClip, L1Decay, WeightDecay
from minidl.optim.hooks.clip import hardClipKer, scaleKer
from minidl.optim.hooks.decay import l1DecayKer, l2DecayKer
from minidl.optim.state import computeType
from minidl.testing import arrays, checkKernel, floatDtypes, shapes

KERNELS = {  # name -> (kernel, its args from (param, grad, gradScale, hyper), float64 oracle of those args)
    "WeightDecay": (l2DecayKer, lambda p, g, gs, h: [p, gs, h["rate"], g],
                    lambda p, gs, rate, g: [g + rate * p / gs[0]]),
    "L1Decay": (l1DecayKer, lambda p, g, gs, h: [p, gs, h["rate"], g],
                lambda p, gs, rate, g: [g + rate * numpy.sign(p) / gs[0]]),
    "GradientClip": (scaleKer, lambda p, g, gs, h: [numpy.array([h["scale"]], gs.dtype), g],
                     lambda scale, g: [g * scale[0]]),
    "GradientHardClip": (hardClipKer, lambda p, g, gs, h: [gs, h["low"], h["high"], g],
                         lambda gs, low, high, g: [numpy.where(g * gs[0] < low, low / gs[0],
                                                               numpy.where(g * gs[0] > high, high / gs[0], g))]),
}


@st.composite
def cases(draw):
    """Hyperparameters in the compute type (float32 for float16 and float32, float64 for float64), and a
    gradient scale of 1 or a loss scaler's 1/1024."""
    dtype, shape = draw(floatDtypes(half=True)), draw(shapes())
    ct = computeType(dtype)
    param, grad = draw(arrays(dtype, shape)), draw(arrays(dtype, shape, -2, 2))
    gradScale = numpy.array([draw(st.sampled_from([1.0, 2.0**-10]))], ct)
    hyper = {"rate": draw(st.floats(0.0, 0.5)), "scale": draw(st.floats(0.0, 1.0)),
             "low": draw(st.floats(-2.0, 0.0)), "high": draw(st.floats(0.0, 2.0))}
    return dtype, param, grad, gradScale, {key: float(ct.type(value)) for key, value in hyper.items()}


@st.composite
def kernelCases(draw, name):
    """(dtype, args) of one hook's kernel."""
    dtype, param, grad, gradScale, hyper = draw(cases())
    return dtype, KERNELS[name][1](param, grad, gradScale, hyper)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel(name):
    checkKernel(KERNELS[name][0], kernelCases(name), KERNELS[name][2])


rng = numpy.random.default_rng(3)


def model(dtypes=(numpy.float64, numpy.float64, numpy.float64)):
    """Three Linear layers (W and b each) of the given dtypes, their gradients set to fixed random values."""
    net = Sequential().extend([Linear(3, 4, dtype=dtypes[0]), Linear(4, 5, dtype=dtypes[1]),
                               Linear(5, 2, dtype=dtypes[2])])
    for var in net.getVarTable().values():
        var.set(rng.standard_normal(var.shape))
        var.grad[...] = toDevice(rng.standard_normal(var.shape), dtype=var.dtype)
    return net


def hooked(net, hooks, useGlobalState, learnRate=0.0):
    """Run one SGD step with the hooks; return {name: (param before, grad before, param after, grad after)}."""
    before = {name: (toHost(var.data).astype(numpy.float64), toHost(var.grad).astype(numpy.float64))
              for name, var in net.getVarTable().items()}
    optimizer = SGD(learnRate=learnRate).setupOn(net, useGlobalState=useGlobalState)
    for hook in hooks:
        optimizer.addHook(hook)
    optimizer.update()
    return {name: (*before[name], toHost(var.data).astype(numpy.float64), toHost(var.grad).astype(numpy.float64))
            for name, var in net.getVarTable().items()}


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("maxNorm", [0.5, 1e3])
def test_gradient_clip_scales_by_the_norm_over_every_variable_and_dtype(useGlobalState, maxNorm):
    net = model((numpy.float32, numpy.float64, numpy.float32))
    result = hooked(net, [GradientClip(maxNorm)], useGlobalState)
    norm = numpy.sqrt(sum((grad**2).sum() for _, grad, _, _ in result.values()))
    scale = min(1.0, maxNorm / norm)
    for name, (_, grad, _, clipped) in result.items():
        numpy.testing.assert_allclose(clipped, grad * scale, rtol=1e-6, err_msg=name)
    clippedNorm = numpy.sqrt(sum((clipped**2).sum() for *_, clipped in result.values()))
    assert clippedNorm == pytest.approx(min(norm, maxNorm), rel=1e-6)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("hook, penalty", [(WeightDecay(0.25), lambda p: p), (L1Decay(0.25), numpy.sign)])
def test_decay_is_scaled_by_each_variables_wc(useGlobalState, hook, penalty):
    """The kernels compute float64 decays in float64: the result is the formula's to float64 rounding."""
    net = model()
    wcs = {"0.W": 1.0, "0.b": 0.0, "1.W": 2.5, "1.b": 0.0, "2.W": 1.0, "2.b": 0.5}
    for name, var in net.getVarTable().items():
        var.wc = wcs[name]
    for name, (param, grad, _, decayed) in hooked(net, [hook], useGlobalState).items():
        numpy.testing.assert_allclose(decayed, grad + 0.25 * wcs[name] * penalty(param), rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_hard_clip_clamps_every_gradient(useGlobalState):
    for name, (_, grad, _, clipped) in hooked(model(), [GradientHardClip(-0.25, 0.5)], useGlobalState).items():
        numpy.testing.assert_array_equal(clipped, numpy.clip(grad, -0.25, 0.5), err_msg=name)


def decayThenClip(params, grads, order, rate=0.5, maxNorm=1.0):
    """The float64 gradients after WeightDecay(rate) and GradientClip(maxNorm) applied in ``order``."""
    for step in order:
        if step == "decay":
            grads = {name: grad + rate * params[name] for name, grad in grads.items()}
        else:
            norm = numpy.sqrt(sum((grad**2).sum() for grad in grads.values()))
            grads = {name: grad * min(1.0, maxNorm / norm) for name, grad in grads.items()}
    return grads


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_hooks_compose_in_the_order_added_and_before_the_step(useGlobalState):
    steps = {}
    for order in [("decay", "clip"), ("clip", "decay")]:
        hooks = [WeightDecay(0.5) if step == "decay" else GradientClip(1.0) for step in order]
        result = hooked(model(), hooks, useGlobalState, learnRate=1.0)
        params = {name: param for name, (param, _, _, _) in result.items()}
        expected = decayThenClip(params, {name: grad for name, (_, grad, _, _) in result.items()}, order)
        for name, (param, _, after, _) in result.items():
            numpy.testing.assert_allclose(after, param - expected[name], rtol=1e-12, err_msg=name)
        steps[order] = numpy.concatenate([(after - param).ravel() for param, _, after, _ in result.values()])
    assert numpy.abs(steps[("decay", "clip")] - steps[("clip", "decay")]).max() > 1e-3


@pytest.mark.parametrize("make, message", [
    (lambda: WeightDecay(-1e-4), "rate"),
    (lambda: L1Decay(float("nan")), "rate"),
    (lambda: GradientClip(0.0), "maxNorm"),
    (lambda: GradientClip(-1.0), "maxNorm"),
    (lambda: GradientHardClip(1.0, -1.0), "low <= high"),
    (lambda: GradientHardClip(-float("inf"), 1.0), "low"),
    (lambda: SGD().addHook(lambda groups: None), "Hook"),
])
def test_bad_hook_arguments_raise_a_clear_error(make, message):
    with pytest.raises(OptimizerError, match=message):
        make()
