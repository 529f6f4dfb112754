"""Mixed precision: float32 master weights for float16 parameters (one fused launch per dtype group, steps below
half an ulp kept, bit-identical resume from a checkpoint) and loss scaling (unscaled inside the launch; a dynamic
scale skips an overflowing step, backs off and grows back; its state in checkpoints)."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import OptimizerError
from minidl.backend import Elementwise, toDevice, toHost
from minidl.nn import Linear, Sequential
from minidl.optim import SGD, Adam, LossScaler
from minidl.optim.lossscaler import scalerKer
from minidl.testing import kernelPaths, runPath
from minidl.train import loadCheckpoint, saveCheckpoint
from tests.optim.test_optimizers import X, Y, makeNet, params, train


def halfNet():
    return makeNet(dtype=numpy.float16)


def setGrads(net, value):
    for var in net.getVarTable().values():
        var.grad[...] = value


def test_masters_keep_steps_below_half_an_ulp_that_plain_float16_loses():
    """1.0 in float16 has an ulp of 2^-10 ≈ 9.8e-4: an SGD step of 1e-4 rounds away in the parameter itself, but
    the float32 masters take it exactly as float32 parameters would."""
    nets = {"masters": halfNet(), "plain": halfNet(), "float32": makeNet(dtype=numpy.float32)}
    optimizers = {"masters": SGD(learnRate=1e-4).setupOn(nets["masters"], useGlobalState=True),
                  "plain": SGD(learnRate=1e-4).setupOn(nets["plain"], useGlobalState=True, masterWeights=False),
                  "float32": SGD(learnRate=1e-4).setupOn(nets["float32"], useGlobalState=True)}
    for net in nets.values():
        for var in net.getVarTable().values():
            var.set(numpy.ones(var.shape))
    for _ in range(20):
        for name, net in nets.items():
            setGrads(net, 1.0)
            optimizers[name].update()
    reference = numpy.float32(1)
    for _ in range(20):
        reference -= numpy.float32(1e-4) * numpy.float32(1)
    (group,) = optimizers["masters"].groups
    numpy.testing.assert_array_equal(toHost(group.master), numpy.full(group.master.size, reference))
    numpy.testing.assert_array_equal(toHost(optimizers["float32"].groups[0].param), toHost(group.master))
    numpy.testing.assert_array_equal(toHost(group.param), numpy.float16(reference))  # 0.998 in float16
    assert (toHost(optimizers["plain"].groups[0].param) == 1).all(), "plain float16 lost every step"


def test_a_float16_parameter_set_in_place_replaces_its_master():
    net = halfNet()
    optimizer = SGD(learnRate=0.5).setupOn(net, useGlobalState=True)
    net[2].vars["b"].set(numpy.array([3.0, -3.0]))
    setGrads(net, 1.0)
    optimizer.update()
    numpy.testing.assert_array_equal(toHost(net[2].b), [2.5, -3.5])
    numpy.testing.assert_array_equal(toHost(optimizer.getStateTable()["2.b.master"]), [2.5, -3.5])


def test_one_fused_launch_per_dtype_group(monkeypatch):
    net = Sequential().extend([Linear(5, 4, dtype=numpy.float16), Linear(4, 3, dtype=numpy.float16),
                               Linear(3, 2, dtype=numpy.float32)])
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=True)
    assert [str(group.param.dtype) for group in optimizer.groups] == ["float16", "float32"]
    assert optimizer.groups[0].master.dtype == numpy.float32 and optimizer.groups[1].master is None
    launches, original = [], Elementwise.__call__

    def counted(kernel, *args, **options):
        launches.append(kernel.name)
        return original(kernel, *args, **options)

    monkeypatch.setattr(Elementwise, "__call__", counted)
    setGrads(net, 0.5)
    optimizer.update()
    guard = "minidl_nonfinite_guard"  # one thread per group, folding its check into the flag the updates read
    bias = "minidl_adam_bias"  # one thread per step: Adam's bias corrections for the true step count
    assert launches == [guard, guard, bias, "minidl_adam_master", "minidl_adam"]


def test_master_state_table_and_bit_identical_resume(tmp_path):
    def run(net, optimizer, steps):
        train(net, optimizer, steps)
        return params(net), {name: toHost(array).copy() for name, array in optimizer.getStateTable().items()}

    net = halfNet()
    optimizer = Adam(alpha=1e-3).setupOn(net, useGlobalState=True, lossScaler=LossScaler(2.0**10))
    run(net, optimizer, 3)
    assert sorted(name for name in optimizer.getStateTable() if name.endswith(".master")) == [
        "0.W.master", "0.b.master", "2.W.master", "2.b.master"]
    saveCheckpoint(tmp_path / "c.safetensors", net, optimizer, epoch=1)
    expected = run(net, optimizer, 3)

    resumed = makeNet(seed=5, dtype=numpy.float16)
    optimizer = Adam(alpha=1e-3).setupOn(resumed, useGlobalState=True, lossScaler=LossScaler(2.0**10))
    loadCheckpoint(tmp_path / "c.safetensors", resumed, optimizer)
    actual = run(resumed, optimizer, 3)
    for want, got in zip(expected, actual):
        for name in want:
            numpy.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_unscaling_in_the_kernel_gives_the_unscaled_step():
    """Gradients scaled by 2^12 (exact in float16 here) and unscaled in the launch: the same masters as the
    unscaled gradients give."""
    results = []
    for scale in (None, 2.0**12):
        net = halfNet()
        scaler = None if scale is None else LossScaler(scale, dynamic=False)
        optimizer = Adam(alpha=1e-3).setupOn(net, useGlobalState=True, lossScaler=scaler)
        for step in range(3):
            optimizer.zeroGradParams()
            net(toDevice(X, dtype=numpy.float16))
            grad = toDevice(Y * 1e-3 * (step + 1), dtype=numpy.float16)
            net.backward(grad if scaler is None else scaler.scaleGrad(grad))
            optimizer.update()
        results.append(toHost(optimizer.groups[0].master))
    numpy.testing.assert_allclose(results[1], results[0], rtol=2e-3, atol=1e-6)


def test_scaling_keeps_gradients_that_float16_flushes_to_zero():
    """A true gradient of 2e-8 is 0 in float16 (the smallest subnormal is 6e-8); scaled by 2^15 it is 6.6e-4."""
    steps = {}
    for scale in (None, 2.0**15):
        net = halfNet()
        scaler = None if scale is None else LossScaler(scale)
        optimizer = SGD(learnRate=1e3).setupOn(net, useGlobalState=True, lossScaler=scaler)
        before = toHost(optimizer.groups[0].master).copy()
        setGrads(net, numpy.float16(2e-8 * (scale or 1)))
        optimizer.update()
        steps[scale] = before - toHost(optimizer.groups[0].master)
    assert not steps[None].any()
    numpy.testing.assert_allclose(steps[2.0**15], 2e-5, rtol=2e-3)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_dynamic_scaling_skips_an_overflow_backs_off_and_grows_back():
    net = halfNet()
    scaler = LossScaler(2.0**15, growthInterval=2)
    optimizer = SGD(learnRate=1e-3).setupOn(net, useGlobalState=True, lossScaler=scaler)
    optimizer.zeroGradParams()
    net(toDevice(X, dtype=numpy.float16))
    net.backward(scaler.scaleGrad(toDevice(Y * 10, dtype=numpy.float16)))  # 10 · 2^15 overflows float16
    before = params(net), toHost(optimizer.groups[0].master).copy()
    assert optimizer.update() is False
    assert scaler.scale == 2.0**14 and optimizer.skippedSteps == 1 and optimizer.t == 0
    for name, value in params(net).items():
        numpy.testing.assert_array_equal(value, before[0][name])
    numpy.testing.assert_array_equal(toHost(optimizer.groups[0].master), before[1])
    for expected in (2.0**15, 2.0**16):  # doubled after every two good steps
        for _ in range(2):
            setGrads(net, 0.01)
            assert optimizer.update() is True
        assert scaler.scale == expected
    assert optimizer.getAttrDict()["lossScale"] == 2.0**16 and optimizer.t == 4


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_scale_grad_multiplies_in_float32_beyond_the_float16_range():
    scaler = LossScaler(2.0**20)
    grad = toDevice(numpy.array([2.0**-20, 2.0**-8, 1.0]), dtype=numpy.float16)
    expected = numpy.array([1.0, 4096.0, numpy.inf], numpy.float16)  # 2^20 itself is inf in float16
    numpy.testing.assert_array_equal(toHost(scaler.scaleGrad(grad)), expected)
    assert scaler.scaleGrad(grad).dtype == numpy.float16


def test_a_static_scale_leaves_an_overflow_to_the_guard():
    net = halfNet()
    optimizer = SGD(learnRate=1e-3).setupOn(net, useGlobalState=True, lossScaler=LossScaler(2.0**15, dynamic=False))
    setGrads(net, numpy.inf)
    with pytest.raises(OptimizerError, match="non-finite gradient"):
        optimizer.update()
    assert optimizer.lossScaler.scale == 2.0**15


def test_the_scaler_state_is_restored_from_a_checkpoint(tmp_path):
    net = halfNet()
    optimizer = SGD(learnRate=1e-3).setupOn(net, useGlobalState=True, lossScaler=LossScaler(2.0**12, growthInterval=5))
    optimizer.lossScaler.backoff()
    train(net, optimizer, steps=3)
    saveCheckpoint(tmp_path / "c.safetensors", net, optimizer, epoch=1)
    scaler = LossScaler(2.0**12, growthInterval=5)
    fresh = SGD(learnRate=1e-3).setupOn(halfNet(), useGlobalState=True, lossScaler=scaler)
    loadCheckpoint(tmp_path / "c.safetensors", fresh.module, fresh)
    assert (fresh.lossScaler.scale, fresh.lossScaler.goodSteps) == (2.0**11, 3)


@pytest.mark.parametrize("make, message", [
    (lambda: LossScaler(0.5), "scale must lie in"), (lambda: LossScaler(backoffFactor=1.0), "backoffFactor"),
    (lambda: LossScaler(growthInterval=0), "growthInterval"), (lambda: LossScaler(dynamic=1), "dynamic"),
    (lambda: SGD().setupOn(halfNet(), lossScaler=2.0**15), "LossScaler"),
    (lambda: SGD().setupOn(halfNet(), masterWeights="yes"), "masterWeights"),
])
def test_bad_mixed_precision_arguments(make, message):
    with pytest.raises(OptimizerError, match=message):
        make()


@given(skips=st.lists(st.booleans(), min_size=1, max_size=12), interval=st.integers(1, 4),
       scale=st.sampled_from([1.0, 2.0**3, 2.0**23, 2.0**24]))
def test_the_scale_update_kernel_follows_the_rule_on_every_path(skips, interval, scale):
    expected = [scale, 0.0]
    for skipped in skips:  # the rule written out: back off at a skip, grow after interval good steps
        if skipped:
            expected = [max(expected[0] * 0.5, 1.0), 0.0]
        elif expected[1] + 1 >= interval:
            expected = [min(expected[0] * 2.0, 2.0**24), 0.0]
        else:
            expected[1] += 1
    for path in ["numpy", *kernelPaths()]:
        state = numpy.array([scale, 0.0])
        for skipped in skips:
            state = runPath(path, scalerKer, [numpy.array([skipped], numpy.int32), 2.0, 0.5, interval, state],
                            size=1)[0]
        assert state.tolist() == expected, path


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_dynamic_scale_changes_on_the_device_without_a_sync_per_step():
    """Inside deferGuard an overflowing step backs off and good steps grow the scale on the device: no read until
    the guard is read, which then counts the skipped step (and t without it)."""
    from minidl import backend

    if not backend.isGpu:
        pytest.skip("syncs are counted on the simulated device (MINIDL_BACKEND=simulated, CI's second run)")
    from minidl.backend.simulated import trace

    net = halfNet()
    scaler = LossScaler(2.0**15, growthInterval=2)
    optimizer = SGD(learnRate=1e-3).setupOn(net, useGlobalState=True, lossScaler=scaler)
    with trace.recording() as recorded, optimizer.deferGuard():
        for value in (numpy.inf, 0.01, 0.01, 0.01, 0.01):
            setGrads(net, value)
            assert optimizer.update() is None
        syncsInSteps = len(recorded.syncs)
    assert syncsInSteps == 0
    assert (scaler.scale, scaler.goodSteps, optimizer.skippedSteps, optimizer.t) == (2.0**16, 0, 1, 4)
