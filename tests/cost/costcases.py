"""Every cost with a maker of valid targets for predictions of a given shape, for tests that run them all."""

import numpy

from minidl.cost import BCE, MSE, SVM, Abs, CrossEntropy, Hinge, KLDivergence, SmoothL1


def softmax(scores):
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def costCases(rng):
    """name -> (cost class, target maker from the predictions' shape), drawing from ``rng``."""
    return {
        "mse": (MSE, lambda shape: rng.standard_normal(shape)),
        "abs": (Abs, lambda shape: rng.standard_normal(shape)),
        "smoothL1": (SmoothL1, lambda shape: rng.standard_normal(shape)),
        "bce": (BCE, lambda shape: rng.uniform(0, 1, shape)),
        "hinge": (Hinge, lambda shape: rng.choice([-1.0, 1.0], shape)),
        "kl": (KLDivergence, lambda shape: softmax(rng.standard_normal(shape) * 2)),
        "crossEntropy": (CrossEntropy, lambda shape: rng.integers(0, shape[1], shape[0])),
        "svm": (SVM, lambda shape: rng.integers(0, shape[1], shape[0])),
    }
