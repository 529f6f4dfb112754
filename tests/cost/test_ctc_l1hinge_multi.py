"""CTC, L1Hinge and Multi: errors against float64 formulas written here (CTC: a sum over every alignment of
short sequences, and PyTorch's ctc_loss), gradients against central differences (float64), accumulation, and
bad input."""

import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import CostError
from minidl.backend import readChecks, toDevice, toHost
from minidl.cost import CTC, MSE, CrossEntropy, L1Hinge, Multi
from minidl.testing import checkCostGradient
from tests.optional import importTorch


def ctcByAlignments(scores, labels, blank):
    """-log Σ over every path of T symbols that collapses (merge repeats, drop blanks) to labels: brute force."""
    logProbs = scores - numpy.log(numpy.exp(scores).sum(axis=1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(scores.shape[1]), repeat=scores.shape[0]):
        collapsed = [symbol for k, symbol in enumerate(path) if symbol != blank and (k == 0 or path[k - 1] != symbol)]
        if collapsed == list(labels):
            total += numpy.exp(sum(logProbs[t, symbol] for t, symbol in enumerate(path)))
    return -numpy.log(total)


def ctcTarget(labels, inputLengths, targetLengths):
    return toDevice(numpy.asarray(labels)), toDevice(numpy.asarray(inputLengths)), \
        toDevice(numpy.asarray(targetLengths))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("blank", [0, 2])
def test_ctc_error_is_the_sum_over_alignments(reduction, blank):
    rng = numpy.random.default_rng(blank)
    scores = rng.standard_normal((5, 3, 3))
    labels = numpy.array([[1, 1], [1 if blank == 0 else 0, 0], [1, 1]])
    labels[labels == blank] = 1
    inputLengths, targetLengths = [5, 4, 3], [2, 1, 0]
    losses = [ctcByAlignments(scores[:inputLengths[n], n], labels[n, :targetLengths[n]], blank) for n in range(3)]
    expected = (numpy.mean([loss / max(length, 1) for loss, length in zip(losses, targetLengths)])
                if reduction == "mean" else sum(losses))
    cost = CTC(blank, reduction)
    error, _ = cost(toDevice(scores), ctcTarget(labels, inputLengths, targetLengths))
    assert error == pytest.approx(expected, rel=1e-12)
    assert cost.getMeanError() == pytest.approx(expected, rel=1e-12)  # 3 sequences: axis 1 is the batch
    assert cost.samples == 3
    checkCostGradient(cost, toDevice(scores), ctcTarget(labels, inputLengths, targetLengths))


@settings(max_examples=15, deadline=None)
@given(steps=st.integers(1, 12), batch=st.integers(1, 4), classes=st.integers(2, 6), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(["mean", "sum"]), blank=st.integers(0, 5))
def test_ctc_against_pytorch_error_and_gradient(steps, batch, classes, seed, reduction, blank):
    torch = importTorch()
    blank %= classes
    rng = numpy.random.default_rng(seed)
    scores = rng.standard_normal((steps, batch, classes)) * 2
    inputLengths = rng.integers(1, steps + 1, batch)
    inputLengths[0] = steps
    maxTarget = max(1, steps // 2)
    targetLengths = numpy.minimum(rng.integers(0, maxTarget + 1, batch), inputLengths // 2)
    others = [c for c in range(classes) if c != blank]
    labels = rng.choice(others, (batch, maxTarget))
    error, grad = CTC(blank, reduction)(toDevice(scores), ctcTarget(labels, inputLengths, targetLengths))
    tensor = torch.tensor(scores, requires_grad=True)
    loss = torch.nn.functional.ctc_loss(torch.log_softmax(tensor, 2), torch.tensor(labels), torch.tensor(inputLengths),
                                        torch.tensor(targetLengths), blank=blank, reduction=reduction)
    loss.backward()
    assert error == pytest.approx(loss.item(), rel=1e-5)
    numpy.testing.assert_allclose(toHost(grad), tensor.grad.numpy(), rtol=1e-5, atol=1e-12)


def test_ctc_impossible_alignment_is_infinite_or_zero_under_zero_infinity():
    scores, target = toDevice(numpy.zeros((2, 1, 3))), ctcTarget([[1, 1]], [2], [2])  # 1 1 needs 3 steps
    assert CTC()(scores, target)[0] == numpy.inf
    error, grad = CTC(zeroInfinity=True)(scores, target)
    assert error == 0 and not toHost(grad).any()


def test_ctc_float32_computes_like_float64():
    rng = numpy.random.default_rng(3)
    scores = rng.standard_normal((6, 2, 4))
    target = ctcTarget([[1, 2], [3, 3]], [6, 5], [2, 2])
    error64, grad64 = CTC()(toDevice(scores), target)
    error32, grad32 = CTC()(toDevice(scores.astype(numpy.float32)), target)
    assert toHost(grad32).dtype == numpy.float32
    assert error32 == pytest.approx(error64, rel=1e-5)
    numpy.testing.assert_allclose(toHost(grad32), toHost(grad64), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: CTC(reduction="none"), "'mean' or 'sum'"),
    (lambda: CTC(blank=-1), "blank must be an integer >= 0"),
    (lambda: CTC(blank=3)(toDevice(numpy.zeros((2, 1, 3))), ctcTarget([[1]], [2], [1])), "out of range for 3"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 3))), ctcTarget([[1]], [2], [1])), r"\(time, batch, classes\)"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 1, 3))), toDevice(numpy.zeros(1, int))), r"\(labels, inputLengths"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 1, 3))), ctcTarget([[1]], [3], [1])), r"inputLengths must lie in \[1, 2\]"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 1, 3))), ctcTarget([[1]], [2], [2])), r"targetLengths must lie in \[0, 1"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 1, 3))), ctcTarget([[0]], [2], [1])), "differ from the blank 0"),
    (lambda: CTC()(toDevice(numpy.zeros((2, 2, 3))), ctcTarget([[1]], [2], [1])), "with 2 rows"),
])
def test_ctc_bad_input_names_what_was_expected(call, message):
    with pytest.raises(CostError, match=message):
        call()
        readChecks()  # on a GPU the lengths and labels are read here


def l1HingeError(x1, x2, labels):
    distance = numpy.abs(x1 - x2)
    return numpy.where(labels[:, None] == 1, distance, numpy.maximum(1 - distance, 0)).mean()


@given(batch=st.integers(1, 5), width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_l1_hinge_error_and_gradient(batch, width, seed):
    rng = numpy.random.default_rng(seed)
    x1, labels = rng.standard_normal((batch, width)), rng.integers(0, 2, batch)
    step = rng.choice([-1, 1], (batch, width)) * rng.choice([0.3, 0.7, 1.5, 2.5], (batch, width))
    x2 = x1 + step  # |d| away from 0 and 1, the kinks
    cost = L1Hinge()
    error, (grad1, grad2) = cost([toDevice(x1), toDevice(x2)], toDevice(labels))
    expected = l1HingeError(x1, x2, labels)
    assert error == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert cost.validate([toDevice(x1), toDevice(x2)], toDevice(labels)) == pytest.approx(expected, rel=1e-12,
                                                                                          abs=1e-15)
    for which, grad in ((0, grad1), (1, grad2)):
        numerical = numpy.zeros_like(x1)
        for index in numpy.ndindex(x1.shape):
            pair = [x1.copy(), x2.copy()]
            pair[which][index] += 1e-6
            plus = l1HingeError(*pair, labels)
            pair[which][index] -= 2e-6
            numerical[index] = (plus - l1HingeError(*pair, labels)) / 2e-6
        numpy.testing.assert_allclose(toHost(grad), numerical, rtol=1e-6, atol=1e-9)


def test_l1_hinge_bad_input():
    pair = [toDevice(numpy.zeros((2, 3))), toDevice(numpy.zeros((2, 3)))]
    with pytest.raises(CostError, match="must be 0 .* or 1"):
        L1Hinge()(pair, toDevice(numpy.array([0, 2])))
        readChecks()
    with pytest.raises(CostError, match="pair"):
        L1Hinge()(pair[0], toDevice(numpy.array([0, 1])))
    with pytest.raises(CostError, match="like x1"):
        L1Hinge()([pair[0], toDevice(numpy.zeros((3, 2)))], toDevice(numpy.array([0, 1])))


def test_multi_weights_each_cost_and_accumulates_each():
    rng = numpy.random.default_rng(0)
    scores, labels = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    pred, target = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    multi = Multi([CrossEntropy(), MSE()], weights=[0.5, 2.0])
    preds, targets = [toDevice(scores), toDevice(pred)], [toDevice(labels), toDevice(target)]
    error, (gradScores, gradPred) = multi(preds, targets)
    crossEntropy, gradCE = CrossEntropy()(toDevice(scores), toDevice(labels))
    mse = ((pred - target) ** 2).mean() / 2
    assert error == pytest.approx(0.5 * crossEntropy + 2 * mse, rel=1e-12)
    numpy.testing.assert_allclose(toHost(gradScores), 0.5 * toHost(gradCE), rtol=1e-12)
    numpy.testing.assert_allclose(toHost(gradPred), 2 * (pred - target) / pred.size, rtol=1e-12)
    assert multi.getMeanError() == pytest.approx(error, rel=1e-12)
    assert multi.getMeanErrors() == pytest.approx([crossEntropy, mse], rel=1e-12)
    multi.resetAccumulator()
    with pytest.raises(CostError, match="no batch"):
        multi.costs[0].getMeanError()


def test_multi_of_ctc_and_l1_hinge_passes_list_gradients_and_counts_sequences():
    rng = numpy.random.default_rng(1)
    multi = Multi().append(CTC(), 3.0).append(L1Hinge(), 0.5)
    x1, x2 = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    scores = rng.standard_normal((4, 5, 3))
    preds = [toDevice(scores), [toDevice(x1), toDevice(x2)]]
    targets = [ctcTarget(numpy.ones((5, 1), int), [4] * 5, [1] * 5), toDevice(rng.integers(0, 2, 5))]
    error, (gradCTC, (grad1, grad2)) = multi(preds, targets)
    ctcError, ctcGrad = CTC()(*[preds[0], targets[0]])
    hingeError, (hinge1, _) = L1Hinge()(preds[1], targets[1])
    assert error == pytest.approx(3 * ctcError + 0.5 * hingeError, rel=1e-12)
    numpy.testing.assert_allclose(toHost(gradCTC), 3 * toHost(ctcGrad), rtol=1e-12)
    numpy.testing.assert_allclose(toHost(grad1), 0.5 * toHost(hinge1), rtol=1e-12)
    numpy.testing.assert_allclose(toHost(grad2), -toHost(grad1), rtol=1e-12)
    assert multi.samples == 5


def test_multi_bad_input():
    with pytest.raises(CostError, match="no costs"):
        Multi()([toDevice(numpy.zeros((2, 2)))], [toDevice(numpy.zeros((2, 2)))])
    with pytest.raises(CostError, match="list of 2"):
        Multi([MSE(), MSE()])([toDevice(numpy.zeros((2, 2)))], [toDevice(numpy.zeros((2, 2)))])
    with pytest.raises(CostError, match="weights must be None or a list of 1"):
        Multi([MSE()], weights=[1, 2])
    with pytest.raises(CostError, match="Multi costs must be a list of costs"):
        Multi(MSE())  # TypeError: 'MSE' object is not iterable
    for weight in (numpy.nan, numpy.inf, True, "1"):  # NaN and infinity made the error NaN
        with pytest.raises(CostError, match="Multi weight must be a finite real number"):
            Multi([MSE()], weights=[weight])
    with pytest.raises(CostError, match="takes costs"):
        Multi().append("mse")
