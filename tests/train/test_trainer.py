"""Trainer, Validator, Calculator: batching over host data against hand-written loops and float64 oracles."""

import io
import sys

import numpy
import pytest

from minidl.backend import generator, seed, startUpload, toDevice, toHost
from minidl.cost import MSE, CrossEntropy
from minidl.errors import DataError, ModuleError, OptimizerError
from minidl.nn import Activation, BatchNorm, BatchNorm2D, Flatten, Linear, Reshape, Sequential, relu
from minidl.optim import SGD, AdaGrad
from minidl.train import Calculator, Trainer, Validator
from minidl.train.batches import deviceBatches, rankShard
from tests.train.nets import BLOBS, assertSameParams, classifier, hostParams


def test_training_learns_the_blobs():
    seed(0)
    net = classifier()
    trainer = Trainer(net, CrossEntropy(), AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=True), batchsize=32)
    validator = Validator(net, CrossEntropy())
    errors = [trainer.trainFromHost(BLOBS.trainData, BLOBS.trainLabels) for _ in range(6)]
    validator.validateFromHost(BLOBS.valData, BLOBS.valLabels)
    assert errors[-1] < errors[0] / 3
    assert validator.accuracy >= 0.95


def handLoop(net, optimizer, data, labels, batchsize, order):
    """The training pass written out: minibatches of the rows in ``order``, one step each; returns the mean error
    over the samples (each batch's mean error weighted by its size: the last batch may be shorter)."""
    total = 0.0
    for start in range(0, len(order), batchsize):
        rows = order[start:start + batchsize]
        error, grad = CrossEntropy()(net(toDevice(data[rows])), toDevice(labels[rows]))
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()
        total += error * len(rows)
    return total / len(order)


@pytest.mark.parametrize("random", [False, True])
@pytest.mark.parametrize("macroBatchSize", [5, 64, 10000])
def test_a_pass_is_the_hand_written_loop_in_the_stated_order(random, macroBatchSize):
    data, labels = BLOBS.trainData[:150], BLOBS.trainLabels[:150]
    seed(3)
    expectedNet = classifier()
    order = generator().permutation(len(data)) if random else numpy.arange(len(data))
    expectedError = handLoop(expectedNet, SGD(learnRate=0.1).setupOn(expectedNet), data, labels, 16, order)

    seed(3)
    net = classifier()
    trainer = Trainer(net, CrossEntropy(), SGD(learnRate=0.1).setupOn(net), batchsize=16)
    error = trainer.trainFromHost(data, labels, macroBatchSize=macroBatchSize, random=random)
    assertSameParams(hostParams(net), hostParams(expectedNet))
    assert error == pytest.approx(expectedError, rel=1e-12)


def crossEntropy64(scores, labels):
    scores = scores.astype(numpy.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    logProbabilities = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
    return -logProbabilities[numpy.arange(len(labels)), labels].mean()


def test_validation_error_and_accuracy_against_float64_oracles():
    seed(4)
    net = classifier()
    data, labels = BLOBS.valData, BLOBS.valLabels
    scores = toHost(net(toDevice(data)))
    validator = Validator(net, CrossEntropy(), batchsize=7)
    error = validator.validateFromHost(data, labels, macroBatchSize=30)
    assert error == validator.error == pytest.approx(crossEntropy64(scores, labels), rel=1e-5)
    assert validator.accuracy == numpy.mean(scores.argmax(axis=1) == labels)
    assert net.train, "validation runs in eval mode, then gives the module its train mode back"


def test_validation_with_a_regression_cost_has_no_accuracy():
    seed(4)
    net = classifier(classes=3)
    data = BLOBS.valData
    target = numpy.random.default_rng(0).standard_normal((len(data), 3)).astype(numpy.float32)
    validator = Validator(net, MSE(), batchsize=16)
    error = validator.validateFromHost(data, target)
    pred = toHost(net(toDevice(data))).astype(numpy.float64)
    assert error == pytest.approx(((pred - target) ** 2).mean() / 2, rel=1e-5)
    assert validator.accuracy is None


def test_calculator_gives_the_module_output_on_every_sample():
    seed(5)
    net = classifier()
    outputs = Calculator(net, batchsize=9).calcFromHost(BLOBS.trainData, macroBatchSize=40)
    assert outputs.shape == (len(BLOBS.trainData), 4) and isinstance(outputs, numpy.ndarray)
    numpy.testing.assert_allclose(outputs, toHost(net(toDevice(BLOBS.trainData))), rtol=1e-5, atol=1e-6)


def state(net, optimizer):
    grads = {name: toHost(var.grad).copy() for name, var in net.getVarTable().items()}
    return hostParams(net), grads, {name: toHost(a).copy() for name, a in optimizer.getStateTable().items()}


@pytest.mark.parametrize("case, error", [
    ("labels shorter than data", DataError),
    ("data not a NumPy array", DataError),
    ("empty data", DataError),
    ("wrong feature count", ModuleError),
    ("bad macroBatchSize", DataError),
    ("random not True or False", DataError),
])
def test_bad_input_is_refused_before_anything_changes(case, error):
    seed(6)
    net = classifier()
    optimizer = AdaGrad(learnRate=0.1).setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=8)
    trainer.trainFromHost(BLOBS.trainData[:16], BLOBS.trainLabels[:16])
    data, labels, kwargs = BLOBS.trainData[:40], BLOBS.trainLabels[:40], {}
    if case == "labels shorter than data":
        labels = labels[:39]
    elif case == "data not a NumPy array":
        data = data.tolist()
    elif case == "empty data":
        data, labels = data[:0], labels[:0]
    elif case == "wrong feature count":
        data = data[:, :5].copy()
    elif case == "bad macroBatchSize":
        kwargs = {"macroBatchSize": 0}
    else:
        kwargs = {"random": "no"}  # truthy: it would shuffle
    before = state(net, optimizer)
    with pytest.raises(error):
        trainer.trainFromHost(data, labels, **kwargs)
    for expected, actual in zip(before, state(net, optimizer)):
        assertSameParams(actual, expected)


def test_bad_setup_is_refused():
    net = classifier()
    with pytest.raises(OptimizerError, match="setupOn"):
        Trainer(net, CrossEntropy(), AdaGrad())
    with pytest.raises(OptimizerError, match="setupOn"):
        Trainer(net, CrossEntropy(), AdaGrad().setupOn(classifier()))
    with pytest.raises(DataError, match="batchsize must be a positive integer"):
        Trainer(net, CrossEntropy(), AdaGrad().setupOn(net), batchsize=0)
    with pytest.raises(DataError, match="dropLast must be True or False, got 'False'"):
        Trainer(net, CrossEntropy(), AdaGrad().setupOn(net), dropLast="False")  # truthy: it would drop
    with pytest.raises(DataError, match="data and labels must have one length: data has 3, target has 2"):
        Validator(net, CrossEntropy()).validateFromHost(BLOBS.valData[:3], BLOBS.valLabels[:2])


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("verbose, terminal, shown", [(True, True, True), (True, False, False), (False, True, False)])
def test_progress_bar_only_on_a_terminal_and_when_verbose(monkeypatch, verbose, terminal, shown):
    stream = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    net = classifier()
    Trainer(net, CrossEntropy(), SGD().setupOn(net), batchsize=50, verbose=verbose).trainFromHost(
        BLOBS.trainData, BLOBS.trainLabels)
    assert ("/400 [" in stream.getvalue()) == shown  # tqdm draws "n/400 [elapsed...]", then clears it


def test_a_shard_moves_only_its_own_rows_to_the_device(monkeypatch):
    """A rank's order holds a fraction of the rows: its pass ends with them, with no empty macro-batches after."""
    moved = []
    monkeypatch.setattr("minidl.train.batches.startUpload",
                        lambda arrays, overlap: moved.extend(map(len, arrays)) or startUpload(arrays, overlap))
    data, labels = BLOBS.trainData[:100], BLOBS.trainLabels[:100]
    shard = rankShard(numpy.arange(100), batchsize=5, index=1, gridsize=4)
    got = [toHost(labels) for _, labels in deviceBatches((data, labels), 5, 10, shard)]
    numpy.testing.assert_array_equal(numpy.concatenate(got), BLOBS.trainLabels[shard])
    assert moved == [10, 10] * 2 + [5, 5]  # 25 rows: two macro-batches of 10 and one of 5, data and labels each


def test_too_few_samples_for_the_ranks_are_refused_before_the_order_is_drawn():
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    from minidl.distributed import NodeInfo

    net = classifier()
    trainer = Trainer(net, CrossEntropy(), SGD(nodeinfo=NodeInfo()).setupOn(net, useGlobalState=True), batchsize=16)
    state = generator().bit_generator.state
    with pytest.raises(DataError, match="10 samples cannot fill one batch of 16 on each of 1 ranks"):
        trainer.trainFromHost(BLOBS.trainData[:10], BLOBS.trainLabels[:10])
    assert generator().bit_generator.state == state


def batchNormNet():
    return Sequential().extend([Linear(6, 8), BatchNorm(8), Activation(relu), Linear(8, 4)])


@pytest.mark.parametrize("case, message", [
    ("a label out of range at row 40", r"target rows 0 to 63: CrossEntropy: label 4 is out of range for 4 classes"),
    ("a negative label", "label -1 is out of range"),
    ("float labels", "labels must be integers"),
    ("a NaN in the data", "data row 37 holds NaN or infinity"),
    ("an infinity in the data", "data row 50 holds NaN or infinity"),
    ("a batch of one for BatchNorm", r"needs batches of at least 2 samples .* end with a batch of 1: pass dropLast"),
])
def test_the_whole_data_set_is_checked_before_the_first_step_or_draw(case, message):
    seed(6)
    net = batchNormNet() if case == "a batch of one for BatchNorm" else classifier()
    optimizer = AdaGrad(learnRate=0.1).setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=16, verbose=False)
    data, labels = BLOBS.trainData[:64].copy(), BLOBS.trainLabels[:64].copy()
    if case == "a label out of range at row 40":
        labels[40] = 4
    elif case == "a negative label":
        labels[3] = -1
    elif case == "float labels":
        labels = labels.astype(numpy.float32)
    elif case == "a NaN in the data":
        data[37, 2] = numpy.nan
    elif case == "an infinity in the data":
        data[50, 0] = -numpy.inf
    else:
        data, labels = BLOBS.trainData[:65], BLOBS.trainLabels[:65]
    before, randomState = state(net, optimizer), generator().bit_generator.state
    with pytest.raises(DataError, match=message):
        trainer.trainFromHost(data, labels)
    assert generator().bit_generator.state == randomState, "the shuffle generator advanced on bad data"
    for expected, actual in zip(before, state(net, optimizer)):
        assertSameParams(actual, expected)
    if case in ("a label out of range at row 40", "a NaN in the data"):
        validator = Validator(net, CrossEntropy(), batchsize=16, verbose=False)
        with pytest.raises(DataError, match=message):
            validator.validateFromHost(data, labels)
        assert validator.error is None


def test_drop_last_leaves_out_a_short_last_batch(monkeypatch):
    seed(2)
    net = batchNormNet()
    trainer = Trainer(net, CrossEntropy(), AdaGrad(learnRate=0.1).setupOn(net), batchsize=16, verbose=False,
                      dropLast=True)
    sizes = []
    original = trainer.step
    monkeypatch.setattr(trainer, "step", lambda batch, labels: sizes.append(len(batch)) or original(batch, labels))
    for random in (True, False):
        sizes.clear()
        error = trainer.trainFromHost(BLOBS.trainData[:65], BLOBS.trainLabels[:65], random=random)
        assert sizes == [16, 16, 16, 16] and numpy.isfinite(error)
    with pytest.raises(DataError, match="dropLast leaves nothing of 5 samples in batches of 16"):
        trainer.trainFromHost(BLOBS.trainData[:5], BLOBS.trainLabels[:5])


def test_a_batch_norm_over_maps_of_several_values_trains_on_a_last_batch_of_one():
    seed(2)
    net = Sequential().extend([Reshape((-1, 2, 3, 1)), BatchNorm2D(2), Flatten(), Linear(6, 4)])
    trainer = Trainer(net, CrossEntropy(), AdaGrad(learnRate=0.1).setupOn(net), batchsize=16, verbose=False)
    assert numpy.isfinite(trainer.trainFromHost(BLOBS.trainData[:65], BLOBS.trainLabels[:65]))
