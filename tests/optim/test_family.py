"""Every optimizer as users run it: local and global state agree with hooks on, a small MLP trains below a stated
error, bad hyperparameters fail at construction, and a run restored from getAttrDict/getStateTable (with a new
learning rate) continues exactly as the original."""

import numpy
import pytest

from minidl import OptimizerError, backend
from minidl.backend import toDevice, toHost
from minidl.cost import MSE
from minidl.nn import Activation, Linear, Sequential, tanh
from minidl.optim import SGD, SMORMS3, AdaDelta, AdaGrad, Adam, AdamW, MomentumSGD, NesterovSGD, RMSProp, RMSPropGraves
from minidl.optim.hooks import GradientClip, GradientHardClip, L1Decay, WeightDecay

TRAINING = {  # optimizer -> hyperparameters for the MLP problem below
    SGD: {"learnRate": 0.5},
    AdaGrad: {"learnRate": 0.1},
    MomentumSGD: {"learnRate": 0.1},
    NesterovSGD: {"learnRate": 0.1},
    AdaDelta: {"rho": 0.9, "epsilon": 1e-4},
    RMSProp: {"learnRate": 0.01},
    RMSPropGraves: {"learnRate": 0.003},
    Adam: {"alpha": 0.03},
    AdamW: {"alpha": 0.03, "weightDecay": 1e-3},
    SMORMS3: {"learnRate": 0.01},
}
ALL = list(TRAINING)


def ids(cls):
    return cls.__name__


def net(seed, dtype=numpy.float64):
    """Linear(6, 16) → tanh → Linear(16, 2); one Variable exempt from decay, one at half the learning rate."""
    backend.seed(seed)
    layers = [Linear(6, 16, dtype=dtype), Activation(tanh), Linear(16, 2, dtype=dtype)]
    layers[2].vars["b"].wc = 0.0
    layers[0].vars["W"].learnRate = 0.5
    return Sequential().extend(layers)


_rng = numpy.random.default_rng(7)
INPUTS = _rng.standard_normal((64, 6))
TARGETS = numpy.tanh(INPUTS @ _rng.standard_normal((6, 4))) @ _rng.standard_normal((4, 2))  # a teacher network


def train(module, optimizer, steps, dtype=numpy.float64):
    data, target, mse = toDevice(INPUTS, dtype), toDevice(TARGETS, dtype), MSE()
    errors = []
    for _ in range(steps):
        error, grad = mse(module(data), target)
        optimizer.zeroGradParams()
        module.backward(grad)
        optimizer.update()
        errors.append(error)
    return errors


def params(module):
    return {name: toHost(var.data).copy() for name, var in module.getVarTable().items()}


def hooks():
    return [WeightDecay(1e-2), L1Decay(1e-3), GradientHardClip(-0.5, 0.5), GradientClip(0.2)]


@pytest.mark.parametrize("cls", ALL, ids=ids)
def test_local_and_global_state_agree_after_20_steps_with_hooks(cls):
    results = []
    for useGlobalState in (False, True):
        module = net(seed=1)
        optimizer = cls(**TRAINING[cls]).setupOn(module, useGlobalState=useGlobalState)
        for hook in hooks():
            optimizer.addHook(hook)
        train(module, optimizer, steps=20)
        results.append(params(module))
    local, flat, start = results[0], results[1], params(net(seed=1))
    for name in start:
        numpy.testing.assert_allclose(flat[name], local[name], rtol=1e-10, atol=1e-12, err_msg=name)
        assert numpy.abs(local[name] - start[name]).max() > 1e-4, f"{name} did not move"


@pytest.mark.parametrize("cls", ALL, ids=ids)
def test_trains_a_small_mlp_below_the_error_bound(cls):
    """The teacher's targets have mean squared error 1.59 / 2 from the untrained float32 net; 300 full-batch
    steps must bring the error (MSE, halved) below 0.025."""
    module = net(seed=0, dtype=numpy.float32)
    errors = train(module, cls(**TRAINING[cls]).setupOn(module, useGlobalState=True), 300, numpy.float32)
    assert errors[0] > 1.0
    assert errors[-1] < 0.025


def rateName(optimizer):
    return "alpha" if isinstance(optimizer, Adam) else "learnRate"


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("cls", ALL, ids=ids)
def test_restored_run_continues_exactly_and_a_new_learning_rate_takes_effect(cls, useGlobalState):
    original = net(seed=1)
    optimizer = cls(**TRAINING[cls]).setupOn(original, useGlobalState=useGlobalState)
    train(original, optimizer, steps=3)
    saved, attrs = params(original), optimizer.getAttrDict()
    states = {key: toHost(array).copy() for key, array in optimizer.getStateTable().items()}
    stateNames = optimizer.setupState(toDevice(numpy.zeros(1)))
    assert attrs["t"] == 3 and sorted(states) == sorted(f"{var}.{key}" for var in saved for key in stateNames)

    name = rateName(optimizer)
    setattr(optimizer, name, attrs[name] / 4)  # a schedule: the next step uses the new rate
    assert optimizer.learnRate == attrs[name] / 4
    train(original, optimizer, steps=1)

    def resumed(rate):
        module = net(seed=2)  # other initial values, overwritten below
        for varName, var in module.getVarTable().items():
            var.set(toDevice(saved[varName]))
        restored = cls().setupOn(module, useGlobalState=useGlobalState)
        restored.setAttrDict({**attrs, name: rate})
        for key, array in restored.getStateTable().items():
            array[...] = toDevice(states[key])
        train(module, restored, steps=1)
        return params(module)

    withNewRate, withOldRate, after = resumed(attrs[name] / 4), resumed(attrs[name]), params(original)
    for varName in after:
        numpy.testing.assert_array_equal(withNewRate[varName], after[varName], err_msg=varName)
    assert max(numpy.abs(withOldRate[v] - after[v]).max() for v in after) > 1e-6


BAD = [
    (SGD, {"learnRate": -1e-3}, "learnRate"),
    (AdaGrad, {"epsilon": 0.0}, "epsilon"),
    (MomentumSGD, {"learnRate": -0.1}, "learnRate"),
    (MomentumSGD, {"momRate": 1.0}, "momRate"),
    (NesterovSGD, {"momRate": -0.1}, "momRate"),
    (AdaDelta, {"rho": 1.0}, "rho"),
    (AdaDelta, {"epsilon": 0.0}, "epsilon"),
    (RMSProp, {"factor": 1.5}, "factor"),
    (RMSProp, {"epsilon": -1e-5}, "epsilon"),
    (RMSPropGraves, {"alpha": 1.0}, "alpha"),
    (RMSPropGraves, {"momRate": 1.0}, "momRate"),
    (RMSPropGraves, {"epsilon": 0.0}, "epsilon"),
    (Adam, {"alpha": -1e-3}, "learnRate"),
    (Adam, {"beta1": 1.0}, "beta1"),
    (Adam, {"beta2": -0.5}, "beta2"),
    (Adam, {"epsilon": 0.0}, "epsilon"),
    (AdamW, {"weightDecay": -1e-2}, "weightDecay"),
    (AdamW, {"beta1": float("nan")}, "beta1"),
    (SMORMS3, {"epsilon": 0.0}, "epsilon"),
    (SMORMS3, {"learnRate": "0.1"}, "learnRate"),
]


@pytest.mark.parametrize("cls, kwargs, name", BAD, ids=lambda value: getattr(value, "__name__", str(value)))
def test_bad_hyperparameters_raise_at_construction(cls, kwargs, name):
    with pytest.raises(OptimizerError, match=name):
        cls(**kwargs)


@pytest.mark.parametrize("cls", ALL, ids=ids)
def test_a_failed_setAttrDict_or_assignment_changes_nothing(cls):
    optimizer = cls(**TRAINING[cls])
    before = optimizer.getAttrDict()
    *valid, last = optimizer.hyperNames
    with pytest.raises(OptimizerError, match=last):  # the valid values set before the bad one are rolled back
        optimizer.setAttrDict({**{key: 0.5 for key in valid}, "t": 5, last: -1.0})
    with pytest.raises(OptimizerError, match="has no attributes"):
        optimizer.setAttrDict({"learnrate": 0.1})
    for notACount in (2.5, 3.0, True):
        with pytest.raises(OptimizerError, match="t must be an integer, got"):
            optimizer.t = notACount
    with pytest.raises(OptimizerError, match=last):
        setattr(optimizer, last, float("inf"))
    assert optimizer.getAttrDict() == before
