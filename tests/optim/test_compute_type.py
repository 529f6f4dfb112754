"""float64 training is exact to float64 rounding: every optimizer, and every hook, run through ``setupOn`` and
``update`` on a float64 network (global and local state), against its formula evaluated in float64 in the test.

The bound is a few float64 ulps per step (RTOL, about 20 ulps after STEPS steps): hyperparameters that reached the
kernels as float32 (the old way) miss it by 1e-8 to 1e-5."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.nn import Linear, Sequential
from minidl.optim import SGD, AdaGrad
from minidl.optim.hooks import GradientClip, GradientHardClip, L1Decay, WeightDecay
from tests.optim.test_family_kernels import SPECS
from tests.optim.test_optimizer_kernels import adagradOracle, sgdOracle

STEPS = 5
RTOL, ATOL = 20 * numpy.finfo(numpy.float64).eps, 1e-300
HYPERS = {  # hyperparameters whose float32 roundings differ from them
    "SGD": {"learnRate": 0.0123}, "AdaGrad": {"learnRate": 0.0123, "epsilon": 1.1e-7},
    "MomentumSGD": {"learnRate": 0.0123, "momRate": 0.91}, "NesterovSGD": {"learnRate": 0.0123, "momRate": 0.91},
    "AdaDelta": {"learnRate": 0.7, "rho": 0.93, "epsilon": 1.1e-6},
    "RMSProp": {"learnRate": 0.0123, "factor": 0.93, "epsilon": 1.1e-5},
    "RMSPropGraves": {"learnRate": 0.0123, "alpha": 0.93, "momRate": 0.91, "epsilon": 1.1e-4},
    "Adam": {"alpha": 0.0123, "beta1": 0.9, "beta2": 0.999, "epsilon": 1.1e-8},
    "AdamW": {"alpha": 0.0123, "beta1": 0.9, "beta2": 0.999, "epsilon": 1.1e-8, "weightDecay": 0.013},
    "SMORMS3": {"learnRate": 0.0123, "epsilon": 1.1e-16},
}
CLASSES = {"SGD": SGD, "AdaGrad": AdaGrad, **{name: spec[0] for name, spec in SPECS.items()}}
ORACLES = {"SGD": sgdOracle, "AdaGrad": adagradOracle, **{name: spec[2] for name, spec in SPECS.items()}}

rng = numpy.random.default_rng(12)


def network():
    net = Sequential().extend([Linear(3, 4, dtype=numpy.float64), Linear(4, 2, dtype=numpy.float64)])
    for var in net.getVarTable().values():
        var.set(rng.standard_normal(var.shape))
    return net


def flat(net, what):
    return numpy.concatenate([toHost(getattr(var, what)).ravel() for var in net.getVarTable().values()])


def setGrads(net, grad):
    offset = 0
    for var in net.getVarTable().values():
        var.grad[...] = toDevice(grad[offset:offset + var.data.size].reshape(var.shape))
        offset += var.data.size


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_optimizer_in_float64_follows_its_formula_to_float64_rounding(name, useGlobalState):
    net = network()
    optimizer = CLASSES[name]().setupOn(net, useGlobalState=useGlobalState)
    optimizer.setAttrDict(HYPERS[name])
    start = flat(net, "data")
    grads = [rng.uniform(-2, 2, start.size) for _ in range(STEPS)]
    for grad in grads:
        setGrads(net, grad)
        optimizer.update()
    hypers = {key: value for key, value in HYPERS[name].items()}
    oracle = ORACLES[name]
    if name in ("SGD", "AdaGrad"):
        expected = oracle(start, grads, hypers["learnRate"], *([hypers["epsilon"]] if name == "AdaGrad" else []))[0]
    else:
        expected = oracle(start, grads, **hypers)["param"]
    numpy.testing.assert_allclose(flat(net, "data"), expected, rtol=RTOL, atol=ATOL)


def penalised(param, grad, hook):
    """The float64 gradient after one hook, from the hook's formula."""
    if isinstance(hook, WeightDecay) and not isinstance(hook, L1Decay):
        return grad + hook.rate * param
    if isinstance(hook, L1Decay):
        return grad + hook.rate * numpy.sign(param)
    if isinstance(hook, GradientClip):
        return grad * hook.maxNorm / max(numpy.sqrt((grad**2).sum()), hook.maxNorm)
    return numpy.clip(grad, hook.low, hook.high)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("hook", [WeightDecay(0.0123), L1Decay(0.0123), GradientClip(0.321),
                                  GradientHardClip(-0.321, 0.123)], ids=repr)
def test_every_hook_in_float64_follows_its_formula_to_float64_rounding(hook, useGlobalState):
    net = network()
    optimizer = SGD(learnRate=0.0123).setupOn(net, useGlobalState=useGlobalState).addHook(hook)
    expected = flat(net, "data")
    for _ in range(STEPS):
        grad = rng.uniform(-2, 2, expected.size)
        setGrads(net, grad)
        optimizer.update()
        expected = expected - 0.0123 * penalised(expected, grad, hook)
    numpy.testing.assert_allclose(flat(net, "data"), expected, rtol=RTOL, atol=ATOL)
