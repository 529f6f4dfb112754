"""The optimizer's non-finite guard (raise, skip, off), clipping with a non-finite gradient, state that cannot go
stale (a Variable replaced after setupOn, setupOn again), and loaded state that cannot be valid."""

import numpy
import pytest

from minidl import CheckpointError, OptimizerError
from minidl.backend import toDevice, toHost
from minidl.optim import SGD, AdaGrad, Adam
from minidl.optim.guard import firstNonFinite
from minidl.optim.hooks import GradientClip, GradientHardClip
from minidl.tensorfile import readTensors, writeTensors
from minidl.train import loadCheckpoint, saveCheckpoint
from minidl.variable import Variable
from tests.optim.test_optimizers import X, Y, makeNet, snapshot, train


def poisoned(net, value, name="2.W", index=(1, 0)):
    """One gradient entry of Variable ``name`` set to ``value`` (NaN or ±inf), every other one finite."""
    net(toDevice(X))
    net.backward(toDevice(Y))
    grad = net.getVarTable()[name].grad
    grad[index] = value


def assertSame(before, after):
    for expected, actual in zip(before, after):
        for name in expected:
            numpy.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("value", [numpy.nan, numpy.inf, -numpy.inf])
def test_raise_names_the_first_variable_and_changes_nothing(useGlobalState, value):
    net = makeNet()
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=useGlobalState)
    train(net, optimizer, steps=2)
    optimizer.zeroGradParams()
    poisoned(net, value)
    before = snapshot(net, optimizer)
    with pytest.raises(OptimizerError, match="Variable '2.W' has a non-finite gradient .* at step 3"):
        optimizer.update()
    assertSame(before, snapshot(net, optimizer))
    assert optimizer.t == 2 and optimizer.skippedSteps == 0


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_skip_leaves_parameters_and_state_and_counts_the_step(useGlobalState):
    net = makeNet()
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=useGlobalState)
    optimizer.nonFinite = "skip"
    train(net, optimizer, steps=2)
    optimizer.zeroGradParams()
    poisoned(net, numpy.nan, name="0.b", index=(3,))
    params, _, state = snapshot(net, optimizer)
    assert optimizer.update() is False
    after = snapshot(net, optimizer)
    assertSame((params, state), (after[0], after[2]))
    assert optimizer.t == 2 and optimizer.getAttrDict()["skippedSteps"] == 1
    train(net, optimizer, steps=1)  # finite again: steps
    assert optimizer.t == 3 and optimizer.skippedSteps == 1


@pytest.mark.parametrize("dtype", [numpy.float16, numpy.float32, numpy.float64])
def test_the_guards_test_is_exact_for_every_value_of_the_dtype(dtype):
    """Each non-finite value is found wherever it is; the largest finite values (whose sum overflows the dtype),
    subnormals and signed zeros are finite."""
    info = numpy.finfo(dtype)
    finite = numpy.array([info.max, info.max, -info.max, info.smallest_subnormal, -0.0, 0.0, 1.0], dtype)
    assert toHost(firstNonFinite(toDevice(finite))).tolist() == [finite.size]
    assert toHost(firstNonFinite(toDevice(-finite))).tolist() == [finite.size]
    for value in (numpy.nan, -numpy.nan, numpy.inf, -numpy.inf):
        for index in range(finite.size):
            poisonedCopy = finite.copy()
            poisonedCopy[index] = value
            assert toHost(firstNonFinite(toDevice(poisonedCopy))).tolist() == [index]
            poisonedCopy[-1] = value  # a later one: the first is still found
            assert toHost(firstNonFinite(toDevice(poisonedCopy))).tolist() == [index]
    long = numpy.ones(100_003, dtype)  # 256 rows of 390, a tail of 163; many partial minima
    long[[77_777, 99_999]] = numpy.nan
    assert toHost(firstNonFinite(toDevice(long))).tolist() == [77_777]
    assert toHost(firstNonFinite(toDevice(numpy.ones(0, dtype)))).tolist() == [0]
    long[[99_999]] = 1
    long[-1] = numpy.inf  # in the tail
    assert toHost(firstNonFinite(toDevice(long))).tolist() == [77_777]
    long[77_777] = 0
    assert toHost(firstNonFinite(toDevice(long))).tolist() == [100_002]



def test_finite_gradients_whose_sum_overflows_are_stepped():
    """Huge but finite float64 gradients (their sum is past 1.8e308) are not mistaken for a diverged run."""
    net = makeNet(dtype=numpy.float64)
    optimizer = SGD(learnRate=1e-320).setupOn(net, useGlobalState=True)
    for var in net.getVarTable().values():
        var.grad[...] = numpy.finfo(numpy.float64).max
    assert optimizer.update() is True and optimizer.t == 1


def test_off_lets_the_value_through():
    net = makeNet()
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True)
    optimizer.nonFinite = "off"
    poisoned(net, numpy.nan)
    assert optimizer.update() is True
    weights = toHost(net[2].W)
    assert numpy.isnan(weights[1, 0]) and numpy.isfinite(numpy.delete(weights.ravel(), 2)).all()


def test_a_bad_mode_is_refused():
    with pytest.raises(OptimizerError, match="nonFinite must be one of"):
        SGD().nonFinite = "ignore"


@pytest.mark.parametrize("value", [numpy.nan, numpy.inf])
def test_gradient_clip_with_a_non_finite_norm_poisons_no_other_parameter(value):
    """The norm is NaN or inf: the clip leaves the gradients alone (scale 1) instead of scaling every one by NaN
    or 0, so only the entry that held the value is hit (with the guard off), and the guard sees it (raise)."""
    net = makeNet()
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True).addHook(GradientClip(1e-3))
    optimizer.nonFinite = "off"
    poisoned(net, value)
    grads = {name: toHost(var.grad).copy() for name, var in net.getVarTable().items()}
    optimizer.update()
    for name, var in net.getVarTable().items():
        assert (numpy.isfinite(toHost(var.data)) == numpy.isfinite(grads[name])).all(), name
    net = makeNet()  # the first has a NaN weight now: every gradient would be NaN
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True).addHook(GradientClip(1e-3))
    poisoned(net, value)
    with pytest.raises(OptimizerError, match="2.W"):
        optimizer.update()


def test_hard_clip_keeps_nan_for_the_guard():
    net = makeNet()
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True).addHook(GradientHardClip(-1.0, 1.0))
    poisoned(net, numpy.nan)
    with pytest.raises(OptimizerError, match="Variable '2.W' has a non-finite gradient"):
        optimizer.update()


def test_a_variable_replaced_after_setup_is_named_at_the_next_update():
    net = makeNet()
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True)
    net[2].setVar("W", Variable(net[2].W.copy()))
    with pytest.raises(OptimizerError, match="'2.W' .* was replaced or added after setupOn"):
        optimizer.update()
    optimizer.setupOn(net, useGlobalState=True)
    train(net, optimizer, steps=1)


def test_setup_again_resets_every_state_and_t():
    net = makeNet()
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=True)
    optimizer.nonFinite = "skip"
    train(net, optimizer, steps=3)
    poisoned(net, numpy.nan)
    optimizer.update()
    assert optimizer.t == 3 and optimizer.skippedSteps == 1
    optimizer.setupOn(net, useGlobalState=True)
    assert optimizer.t == 0 and optimizer.skippedSteps == 0
    assert all(not toHost(array).any() for array in optimizer.getStateTable().values())


def spoil(path, name, value):
    """Rewrite the tensor ``name`` of a safetensors file with one entry set to ``value``."""
    for formatName in ("minidl.optimizer", "minidl.checkpoint"):
        try:
            tensors, metadata = readTensors(path, formatName)
            break
        except CheckpointError:
            continue
    tensors[name] = tensors[name].copy()
    tensors[name].reshape(-1)[0] = value
    writeTensors(path, tensors, metadata)


@pytest.mark.parametrize("name, value, message", [("2.W.h", -1.0, "negative"), ("0.b.h", numpy.nan, "NaN or inf"),
                                                  ("0.W.h", numpy.inf, "NaN or inf")])
def test_impossible_optimizer_state_is_refused_by_load_and_load_checkpoint(tmp_path, name, value, message):
    net = makeNet()
    optimizer = AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=True)
    train(net, optimizer, steps=2)
    optimizer.save(tmp_path / "o.safetensors")
    saveCheckpoint(tmp_path / "c.safetensors", net, optimizer, epoch=1)
    spoil(tmp_path / "o.safetensors", name, value)
    spoil(tmp_path / "c.safetensors", f"optimizer.{name}", value)
    before = snapshot(net, optimizer)
    with pytest.raises(CheckpointError, match=f"{name}.* {message}"):
        optimizer.load(tmp_path / "o.safetensors")
    with pytest.raises(CheckpointError, match=f"{name}.* {message}"):
        loadCheckpoint(tmp_path / "c.safetensors", net, optimizer)
    assertSame(before, snapshot(net, optimizer))


def test_a_negative_momentum_is_valid_state():
    """Only accumulated squares must be >= 0: a velocity or a running mean of gradients may be negative."""
    net = makeNet()
    optimizer = Adam().setupOn(net)
    tensors = {name: -numpy.ones_like(toHost(array)) for name, array in optimizer.getStateTable().items()}
    with pytest.raises(CheckpointError, match=r"\.v'.* negative"):
        optimizer.checkLoadedState(tensors, "here")
    optimizer.checkLoadedState({name: array for name, array in tensors.items() if name.endswith(".m")}, "here")



def badStep(net, optimizer, value=numpy.nan, name="2.W", index=(1, 0)):
    optimizer.zeroGradParams()
    poisoned(net, value, name=name, index=index)
    return optimizer.update()


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_deferred_raise_names_the_first_bad_step_at_the_read_and_nothing_changed_from_it_on(useGlobalState):
    """Inside deferGuard, update() leaves the verdict on the device (returns None); the steps from the bad one
    on change nothing (the update kernels read the flag); the read raises, naming the Variable and the step."""
    net = makeNet()
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=useGlobalState)
    with pytest.raises(OptimizerError, match=r"Variable '2.W' has a non-finite gradient .* at step 3: that step and "
                                             r"the 2 after it changed nothing"):
        with optimizer.deferGuard():
            train(net, optimizer, steps=2)
            before = snapshot(net, optimizer)
            assert badStep(net, optimizer) is None
            train(net, optimizer, steps=2)  # finite again, but after a bad step: nothing changes until the read
            after = snapshot(net, optimizer)
            assertSame((before[0], before[2]), (after[0], after[2]))
            assert optimizer.t == 5
    assert optimizer.t == 2 and optimizer.skippedSteps == 0
    train(net, optimizer, steps=1)  # the error read, the run can go on
    assert optimizer.t == 3


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_deferred_skip_skips_only_the_bad_step_and_counts_it_at_the_read(useGlobalState):
    net, reference = makeNet(), makeNet()
    optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=useGlobalState)
    referenceOptimizer = Adam(alpha=0.01).setupOn(reference, useGlobalState=useGlobalState)
    optimizer.nonFinite = "skip"
    with optimizer.deferGuard():
        train(net, optimizer, steps=2)
        badStep(net, optimizer, numpy.inf, name="0.b", index=(3,))
        train(net, optimizer, steps=3)
        assert optimizer.t == 6 and optimizer.skippedSteps == 0  # not read yet
        assert optimizer.readGuard() == 1
        assert optimizer.t == 5 and optimizer.skippedSteps == 1
    train(net, optimizer, steps=1)
    # the steps after the skipped one ran with Adam's true t (3, 4, 5: the device's count, before the host read
    # the guard), so the run is bit-identical to one that never saw the bad step
    train(reference, referenceOptimizer, steps=6)
    assert referenceOptimizer.t == optimizer.t
    assertSame(snapshot(reference, referenceOptimizer), snapshot(net, optimizer))


@pytest.mark.parametrize("save", ["optimizer", "checkpoint"])
def test_state_saved_inside_defer_guard_resumes_as_the_run_goes_on(tmp_path, save):
    # a skipped step counts in the host's t until the guard is read: a file written before the read must hold the
    # true t and skippedSteps, or a resumed Adam corrects its bias for a step too many
    def setUp():
        net = makeNet()
        optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=True)
        optimizer.nonFinite = "skip"
        return net, optimizer

    net, optimizer = setUp()
    path = tmp_path / "state.safetensors"
    with optimizer.deferGuard():
        train(net, optimizer, steps=2)
        badStep(net, optimizer)
        saved = snapshot(net, optimizer)
        optimizer.save(path) if save == "optimizer" else saveCheckpoint(path, net, optimizer, 0)
        train(net, optimizer, steps=2)
    resumedNet, resumed = setUp()
    for var, params in zip(resumedNet.getVarTable().values(), saved[0].values()):
        var.data[...] = toDevice(params)
    resumed.load(path) if save == "optimizer" else loadCheckpoint(path, resumedNet, resumed)
    assert (resumed.t, resumed.skippedSteps) == (2, 1)
    train(resumedNet, resumed, steps=2)
    assert (resumed.t, resumed.skippedSteps) == (optimizer.t, optimizer.skippedSteps) == (4, 1)
    assertSame(snapshot(net, optimizer), snapshot(resumedNet, resumed))


@pytest.mark.parametrize("mode", ["skip", "raise"])
@pytest.mark.parametrize("load", ["optimizer", "checkpoint"])
def test_a_load_forgets_what_the_guard_recorded_of_the_steps_it_replaces(tmp_path, mode, load):
    # a step skipped but not yet read (inside deferGuard, or left unread by an epoch that ended in an error) is a
    # step of the run the load replaces: it must not come off the loaded t, nor keep the steps after the load from
    # changing anything ("raise"), nor shift Adam's bias correction
    def setUp():
        net = makeNet()
        optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=True)
        optimizer.nonFinite = mode
        return net, optimizer

    def save(path, net, optimizer):
        optimizer.save(path) if load == "optimizer" else saveCheckpoint(path, net, optimizer, 0)

    def restore(path, net, optimizer, params):
        for var, values in zip(net.getVarTable().values(), params.values()):
            var.data[...] = toDevice(values)
        optimizer.load(path) if load == "optimizer" else loadCheckpoint(path, net, optimizer)

    path = tmp_path / "state.safetensors"
    net, optimizer = setUp()
    train(net, optimizer, steps=3)
    params = snapshot(net, optimizer)[0]
    save(path, net, optimizer)
    with optimizer.deferGuard():
        train(net, optimizer, steps=1)
        badStep(net, optimizer)
        restore(path, net, optimizer, params)
        train(net, optimizer, steps=2)
    reference, referenceOptimizer = setUp()
    restore(path, reference, referenceOptimizer, params)
    train(reference, referenceOptimizer, steps=2)
    assert (optimizer.t, optimizer.skippedSteps) == (referenceOptimizer.t, referenceOptimizer.skippedSteps) == (5, 0)
    assertSame(snapshot(reference, referenceOptimizer), snapshot(net, optimizer))


def test_sync_every_reads_the_guard_every_n_steps_inside_defer_guard():
    net = makeNet()
    optimizer = SGD(learnRate=0.1).setupOn(net, useGlobalState=True)
    optimizer.nonFinite, optimizer.syncEvery = "skip", 2
    with optimizer.deferGuard():
        assert badStep(net, optimizer) is None
        assert badStep(net, optimizer) is False and optimizer.skippedSteps == 2 and optimizer.t == 0
        train(net, optimizer, steps=1)
        assert optimizer.update() is True and optimizer.t == 2
