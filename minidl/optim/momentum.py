"""SGD with momentum: the classical form (Polyak, 1964) and Nesterov's (1983), in the velocity form of Sutskever,
Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep learning" (ICML 2013):

    MomentumSGD:  mom ← momRate · mom + learnRate · grad;   param ← param − mom
    NesterovSGD:  mom ← momRate · mom + learnRate · grad;   param ← param − (momRate · mom + learnRate · grad)

Nesterov's step is the look-ahead rewritten on the current parameters (Bengio, Boulanger-Lewandowski & Pascanu,
2013): param − momRate² · mom_old − (1 + momRate) · learnRate · grad. The learning rate sits inside the velocity,
as in the reference framework, so a new learnRate scales the gradients added from the next step on.
"""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def _velocity(grad, learnRate, momRate, mom):
    """mom ← momRate · mom + learnRate · grad; returns the scratch buffer holding learnRate · grad."""
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")  # as C promotes half
    numpy.multiply(grad, learnRate, out=step)
    mom *= momRate
    mom += step
    return step


def _momentumNumpy(grad, learnRate, momRate, param, mom):
    _velocity(grad, learnRate, momRate, mom)
    param -= mom


def momentumRuleOf(name, paramStep, reference):
    """The rule of a momentum SGD: the velocity update, then param -= ``paramStep`` (a C expression)."""
    return UpdateRule(name, {"learnRate": Hyper(), "momRate": Hyper(high=1.0, highOpen=True)}, {"mom": State()},
                      f"mom = momRate * mom + learnRate * grad; param -= {paramStep}", reference)


momentumRule = momentumRuleOf("minidl_momentum_sgd", "mom", _momentumNumpy)


def _nesterovNumpy(grad, learnRate, momRate, param, mom):
    step = _velocity(grad, learnRate, momRate, mom)
    ahead = scratch(grad.shape, step.dtype, "ahead")
    numpy.multiply(mom, momRate, out=ahead)
    step += ahead
    param -= step  # one subtraction, as C: two would round a half parameter twice and turn -0.0 - (-0.0) into +0.0


nesterovRule = momentumRuleOf("minidl_nesterov_sgd", "momRate * mom + learnRate * grad", _nesterovNumpy)


class MomentumSGD(Optimizer):
    """SGD whose step is a running sum of past gradients, each older one weighted by a further momRate."""

    rule = momentumRule

    def __init__(self, learnRate=1e-3, momRate=0.9, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, momRate=momRate)


class NesterovSGD(MomentumSGD):
    """Momentum SGD that takes the gradient step from where the momentum is about to carry the parameters."""

    rule = nesterovRule
