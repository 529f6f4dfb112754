"""Adam (Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015, Algorithm 1) and AdamW (Loshchilov
& Hutter, "Decoupled weight decay regularization", ICLR 2019, Algorithm 2), at step t = 1, 2, ...:

    m     ← beta1 · m + (1 − beta1) · grad
    v     ← beta2 · v + (1 − beta2) · grad²
    param ← param · (1 − alpha · weightDecay) − alpha · m̂ / (sqrt(v̂) + epsilon),
            m̂ = m / (1 − beta1^t),  v̂ = v / (1 − beta2^t)

with the bias corrections exact (epsilon is added to sqrt(v̂), not to the uncorrected root). Adam is AdamW with
weightDecay = 0: one kernel serves both. The decay reads the parameters before the step and is scaled by alpha
(the learning rate), as in PyTorch's AdamW; the paper's λ·η_t is alpha · weightDecay here. The decay is a product
(``keep · param``, as PyTorch's ``param.mul_(1 − lr·wd)``), not a difference ``param − decay · param``: an infinite
parameter stays infinite (0 · inf would be NaN), and with weightDecay 0 the product by 1 is exact on every path.
The kernel takes keep = 1 − alpha · weightDecay in the compute type and alpha in float64; the bias corrections
1 − beta1^t and sqrt(1 − beta2^t) are computed in float64 on the device once per step (``biasKer``, one thread) and
the kernel forms alpha / (1 − beta1^t) and sqrt(1 − beta2^t) in float64 before rounding them to the compute type,
as the host did. t there is the true count of steps taken: the host's count less the steps the non-finite guard
skipped since its last read (its record on the device), so a skipped step never shifts the bias correction of the
steps after it, even before the host reads the guard.
"""

import math

import numpy

from minidl.backend import Elementwise, scratch, xp
from minidl.backend.tape import liveValues
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def _biasNumpy(record, t, beta1, beta2, bias):
    steps = float(t - record[0])
    bias[0] = 1 - beta1**steps
    bias[1] = math.sqrt(1 - beta2**steps)


biasKer = Elementwise(
    "minidl_adam_bias",
    "raw int64 record, int64 t, float64 beta1, float64 beta2",
    "raw float64 bias",
    "const double steps = (double)(t - record[0]); bias[0] = 1 - pow(beta1, steps); "
    "bias[1] = sqrt(1 - pow(beta2, steps))",
    _biasNumpy,
)


def _adamNumpy(grad, learnRate, bias, beta1, beta2, epsilon, keep, param, m, v):
    stepSize, rootFix2 = m.dtype.type(learnRate / bias[0]), m.dtype.type(bias[1])  # as the kernel's (S) casts
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")  # as C promotes half
    numpy.multiply(grad, 1 - beta1, out=step)
    m *= beta1
    m += step
    numpy.multiply(grad, 1 - beta2, out=step)  # (1 − beta2) · grad · grad, in the CUDA text's order
    step *= grad
    v *= beta2
    v += step
    numpy.sqrt(v, out=step)
    step /= rootFix2
    step += epsilon
    kept = scratch(grad.shape, step.dtype, "kept")
    numpy.multiply(m, stepSize, out=kept)  # (stepSize · m) / root
    numpy.divide(kept, step, out=step)
    numpy.multiply(param, keep, out=kept, dtype=kept.dtype)
    numpy.subtract(kept, step, out=kept)
    param[...] = kept  # one rounding to a half parameter, as C


adamRule = UpdateRule(
    "minidl_adam",
    hypers={"alpha": Hyper(), "beta1": Hyper(high=1.0, highOpen=True), "beta2": Hyper(high=1.0, highOpen=True),
            "epsilon": Hyper(lowOpen=True)},
    states={"m": State(), "v": State(nonNegative=True)},
    launch=("float64 learnRate", "raw float64 bias", "beta1", "beta2", "epsilon", "keep"),
    operation="const S stepSize = (S)(learnRate / bias[0]); const S rootFix2 = (S)bias[1];"
              "m = beta1 * m + (1 - beta1) * grad;"
              "v = beta2 * v + (1 - beta2) * grad * grad;"
              "param = keep * param - stepSize * m / (sqrt(v) / rootFix2 + epsilon)",
    reference=_adamNumpy,
)


class Adam(Optimizer):
    """Steps of a running mean of gradients over a running RMS of gradients, both corrected for their zero start.

    ``alpha`` is the learning rate: ``alpha`` and ``learnRate`` name the same attribute.
    """

    rule = adamRule
    weightDecay = 0.0
    bias = None  # this step's [1 − beta1^t, sqrt(1 − beta2^t)] on the device, float64 (beforeRule)

    def __init__(self, alpha=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, nodeinfo=None):
        super().__init__(nodeinfo, alpha=alpha, beta1=beta1, beta2=beta2, epsilon=epsilon)

    @property
    def alpha(self):
        return self.learnRate

    @alpha.setter
    def alpha(self, value):
        self.learnRate = value

    def beforeRule(self):
        """This step's (``t + 1``) bias corrections on the device, for the true step count (the module's docstring)."""
        if self.bias is None:
            self.bias = xp.zeros(2, dtype=numpy.float64)
        step, = liveValues((self.t + 1,), lambda: (self.t + 1,))  # read again by a replayed step
        biasKer(self.record, step, self.beta1, self.beta2, self.bias, size=1)

    def hyperValues(self, learnRate):
        return learnRate, self.bias, self.beta1, self.beta2, self.epsilon, 1 - learnRate * self.weightDecay


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameters shrink by alpha · weightDecay each step, apart from the
    gradient's moments (unlike L2 decay added to the gradient, which Adam's normalisation would rescale)."""

    hypers = {**adamRule.hypers, "weightDecay": Hyper()}

    def __init__(self, alpha=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weightDecay=1e-2, nodeinfo=None):
        Optimizer.__init__(self, nodeinfo, alpha=alpha, beta1=beta1, beta2=beta2, epsilon=epsilon,
                           weightDecay=weightDecay)
