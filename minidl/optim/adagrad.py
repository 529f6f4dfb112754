"""AdaGrad (Duchi, Hazan & Singer, 2011):

    h     ← h + grad²
    param ← param − learnRate · grad / (sqrt(h) + epsilon)

epsilon is added outside the square root, as in the reference framework's kernel (the seed page writes
it inside; outside keeps the step bounded by learnRate · grad / epsilon when h is tiny). learnRate and
epsilon reach the kernel in the compute type. h is float32 for float16 parameters (``stateArray``): in float16 a
gradient below about 2e-4 would square to 0 and the step become grad / epsilon.
"""

from minidl.optim.optimizer import Optimizer
from minidl.optim.rootstep import rootStep, squares
from minidl.optim.rule import Hyper, State, UpdateRule


def _adagradNumpy(grad, learnRate, epsilon, param, h):
    step = squares(grad)
    h += step
    rootStep(grad, learnRate, epsilon, param, h, step)


adagradRule = UpdateRule(
    "minidl_adagrad",
    hypers={"learnRate": Hyper(), "epsilon": Hyper(lowOpen=True)},
    states={"h": State(nonNegative=True)},
    operation="h += grad * grad; param -= learnRate * grad / (sqrt(h) + epsilon)",
    reference=_adagradNumpy,
)


class AdaGrad(Optimizer):
    """Adaptive gradient: each parameter's step shrinks with the root of its summed squared gradients."""

    rule = adagradRule

    def __init__(self, learnRate=1e-3, epsilon=1e-8, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, epsilon=epsilon)
