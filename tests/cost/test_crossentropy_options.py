"""CrossEntropy over (batch, classes, ...) scores with ignoreIndex, labelSmoothing and class weights:
PyTorch's numbers, float64 numerical gradients, a formula by hand, bad arguments."""

import numpy
import pytest

from minidl.backend import readChecks, toDevice, toHost
from minidl.cost import CrossEntropy
from minidl.errors import CostError
from minidl.testing import checkCostGradient
from tests.optional import importTorch

rng = numpy.random.default_rng(3)
OPTIONS = [
    {},
    {"ignoreIndex": -100},
    {"labelSmoothing": 0.2},
    {"weights": numpy.array([0.5, 2.0, 1.0, 0.0])},
    {"ignoreIndex": 1, "labelSmoothing": 0.1, "weights": numpy.array([1.0, 3.0, 0.25, 2.0])},
]


def case(shape, ignoreIndex=None):
    scores = rng.standard_normal(shape) * 3
    labels = rng.integers(0, shape[1], shape[:1] + shape[2:])
    if ignoreIndex is not None:
        labels[rng.random(labels.shape) < 0.3] = ignoreIndex
    return scores, labels


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 2)])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_matches_pytorch(options, shape):
    torch = importTorch()
    scores, labels = case(shape, options.get("ignoreIndex"))
    error, grad = CrossEntropy(**options)(toDevice(scores), toDevice(labels))
    weight = options.get("weights")
    tensor = torch.tensor(scores, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(
        tensor, torch.tensor(labels), weight=None if weight is None else torch.tensor(weight),
        ignore_index=options.get("ignoreIndex", -100), label_smoothing=options.get("labelSmoothing", 0.0))
    expected.backward()
    assert error == pytest.approx(float(expected.detach()), rel=1e-12)
    numpy.testing.assert_allclose(toHost(grad), tensor.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_numerical_gradient(options):
    scores, labels = case((3, 4, 2), options.get("ignoreIndex"))
    checkCostGradient(CrossEntropy(**options), toDevice(scores), toDevice(labels))


def test_sequence_scores_equal_the_flattened_positions():
    """(batch, classes, time) scores are the (batch·time, classes) rows with the class axis moved last."""
    scores, labels = case((2, 5, 3))
    error, grad = CrossEntropy()(toDevice(scores), toDevice(labels))
    rows = scores.transpose(0, 2, 1).reshape(-1, 5)
    logp = rows - rows.max(axis=1, keepdims=True)
    logp -= numpy.log(numpy.exp(logp).sum(axis=1, keepdims=True))
    assert error == pytest.approx(-logp[numpy.arange(6), labels.ravel()].mean(), rel=1e-12)
    assert grad.shape == scores.shape


def test_every_label_ignored_gives_zero_error_and_gradient():
    scores = rng.standard_normal((3, 4))
    error, grad = CrossEntropy(ignoreIndex=-1)(toDevice(scores), toDevice(numpy.full(3, -1)))
    assert error == 0.0 and not toHost(grad).any()


@pytest.mark.parametrize("options", [{}, {"labelSmoothing": 0.2}], ids=str)
def test_an_ignored_positions_nan_scores_reach_neither_error_nor_gradient_as_in_pytorch(options):
    """PyTorch leaves an ignored position out of the error, whatever its scores, and so does minidl (its gradient
    row is 0 here, where PyTorch's autograd gives 0·NaN); a NaN in a position that counts makes the error NaN and
    its row of the gradient NaN."""
    torch = importTorch()
    scores, labels = case((5, 4))
    labels[1] = -100
    scores[1, 2] = numpy.nan
    error, grad = CrossEntropy(ignoreIndex=-100, **options)(toDevice(scores), toDevice(labels))
    tensor = torch.tensor(scores, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tensor, torch.tensor(labels), ignore_index=-100,
                                                 label_smoothing=options.get("labelSmoothing", 0.0))
    expected.backward()
    assert numpy.isfinite(error) and error == pytest.approx(float(expected.detach()), rel=1e-12)
    counted = [0, 2, 3, 4]
    numpy.testing.assert_allclose(toHost(grad)[counted], tensor.grad.numpy()[counted], rtol=1e-10, atol=1e-14)
    assert not toHost(grad)[1].any()
    scores[3, 0] = numpy.nan  # a position that counts
    error, grad = CrossEntropy(ignoreIndex=-100, **options)(toDevice(scores), toDevice(labels))
    assert numpy.isnan(error) and numpy.isnan(toHost(grad)[3]).all() and numpy.isfinite(toHost(grad)[[0, 2, 4]]).all()


@pytest.mark.parametrize("make, labels", [
    (lambda: CrossEntropy(labelSmoothing=1.5), None),
    (lambda: CrossEntropy(ignoreIndex=0.5), None),
    (lambda: CrossEntropy(ignoreIndex="-100"), None),  # these four raised ValueError or TypeError
    (lambda: CrossEntropy(ignoreIndex=numpy.nan), None),
    (lambda: CrossEntropy(labelSmoothing=None), None),
    (lambda: CrossEntropy(labelSmoothing="0.1"), None),
    (lambda: CrossEntropy(weights=numpy.array([1.0, numpy.inf, 1.0, 1.0])), None),  # accepted: the error was NaN
    (lambda: CrossEntropy(weights=numpy.array([1.0, -1.0, 1.0, 1.0])), None),
    (lambda: CrossEntropy(weights=numpy.ones(3)), numpy.zeros(2, numpy.int64)),
    (lambda: CrossEntropy(), numpy.zeros((2, 1), numpy.int64)),
    (lambda: CrossEntropy(), numpy.array([0, 4])),
    (lambda: CrossEntropy(ignoreIndex=-100), numpy.array([-100, -1])),
])
def test_bad_arguments_are_refused(make, labels):
    with pytest.raises(CostError):
        make()(toDevice(rng.standard_normal((2, 4))), toDevice(labels))
        readChecks()  # out-of-range labels: at the call on the CPU, at the read on a GPU
