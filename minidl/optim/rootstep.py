"""The NumPy step that AdaGrad's and RMSProp's references share: the gradient divided by the root of an
accumulated square, param ← param − learnRate · grad / (sqrt(squared) + epsilon)."""

import numpy

from minidl.backend import scratch


def squares(grad):
    """grad², in a scratch buffer of the compute type (half squares in float32, as C promotes half)."""
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")
    numpy.multiply(grad, grad, out=step, dtype=step.dtype)
    return step


def rootStep(grad, learnRate, epsilon, param, squared, step):
    """param ← param − learnRate · grad / (sqrt(squared) + epsilon), through the buffer ``step``, in the CUDA
    text's order: (learnRate · grad) / root."""
    numpy.sqrt(squared, out=step)
    step += epsilon
    scaled = scratch(grad.shape, step.dtype, "scaledGrad")
    numpy.multiply(grad, learnRate, out=scaled)
    numpy.divide(scaled, step, out=step)
    param -= step
