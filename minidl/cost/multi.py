"""Multi: several costs over the several outputs of a network (a Graph with several outputs), weighted. For costs
c_k with weights w_k, predictions [p_1, ...] and targets [t_1, ...],

    error = Σ_k w_k c_k(p_k, t_k),        grads = [w_k ∂c_k/∂p_k],

so ``net.backward(grads)`` trains on the weighted sum. Each cost also keeps its own accumulator
(``getMeanErrors()``); ``getMeanError()`` is the weighted total's, over the batches since ``resetAccumulator()``.
"""

from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.nn.module import describe
from minidl.validation import checkNumber


class Multi(Cost):
    """``Multi(costs, weights=None)`` (weights default to 1); or ``Multi().append(cost, weight=1.0)``."""

    def __init__(self, costs=(), weights=None):
        self.costs, self.weights = [], []
        if not isinstance(costs, (list, tuple)):
            raise CostError(f"Multi costs must be a list of costs, got {describe(costs)}")
        if weights is not None and (not isinstance(weights, (list, tuple)) or len(weights) != len(costs)):
            raise CostError(f"Multi weights must be None or a list of {len(costs)} numbers (one per cost), got "
                            f"{weights!r}")
        for index, cost in enumerate(costs):
            self.append(cost, 1.0 if weights is None else weights[index])
        super().__init__()

    def __repr__(self):
        return f"Multi({', '.join(f'{w:g} {c!r}' for c, w in zip(self.costs, self.weights))})"

    def append(self, cost, weight=1.0):
        if not isinstance(cost, Cost):
            raise CostError(f"Multi takes costs, got {type(cost).__name__}")
        weight = checkNumber(weight, "Multi weight", CostError)
        self.costs.append(cost)
        self.weights.append(weight)
        return self

    def resetAccumulator(self):
        super().resetAccumulator()
        for cost in getattr(self, "costs", ()):
            cost.resetAccumulator()

    def readChecks(self):
        for cost in self.costs:
            cost.readChecks()

    def getMeanErrors(self):
        """Each cost's own mean error, in order."""
        return [cost.getMeanError() for cost in self.costs]

    def batchSize(self, pred):
        return self.costs[0].batchSize(pred[0])

    def checkInput(self, pred, target):
        if not self.costs:
            raise CostError("Multi has no costs: give them to Multi(costs) or append(cost)")
        for what, value in (("predictions", pred), ("targets", target)):
            if not isinstance(value, (list, tuple)) or len(value) != len(self.costs):
                raise CostError(f"{self!r}: {what} must be a list of {len(self.costs)} (one per cost), got "
                                f"{describe(value)}")
        checked = [cost.checkInput(p, t) for cost, p, t in zip(self.costs, pred, target)]
        return [p for p, _ in checked], [t for _, t in checked]

    def calcError(self, pred, target):
        errors = [cost.calcError(p, t) for cost, p, t in zip(self.costs, pred, target)]
        for cost, p, error in zip(self.costs, pred, errors):
            cost.accumulate(error, cost.batchSize(p))
        return sum(w * e for w, e in zip(self.weights, errors))

    def calcErrorAndGrad(self, pred, target):
        total, grads = 0.0, []
        for cost, weight, p, t in zip(self.costs, self.weights, pred, target):
            error, grad = cost.calcErrorAndGrad(p, t)
            cost.accumulate(error, cost.batchSize(p))
            total += weight * error
            grads.append([weight * g for g in grad] if isinstance(grad, list) else weight * grad)
        return total, grads
