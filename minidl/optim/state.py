"""Where an optimizer's arrays live: state arrays of the compute type, and the groups of arrays updated together.

* local state: one group per Variable (its own data, grad and state arrays), one launch each;
* global state (``useGlobalState=True``): one group per dtype. The Variables' data and grads are moved into
  ONE contiguous parameter buffer and ONE gradient buffer, the module's Variables become views into them
  (so backward writes straight into the flat gradient buffer), the state arrays are flat too, and a step
  is a single launch over the whole model. Variables with a ``learnRate`` scale other than their
  neighbours' get a launch of their own for their stretch of the buffer (``StateGroup.runs``).

Both give the same numbers, and the same state table (``stateTable``). Before a step, the checks here make sure
the arrays are still the module's (``checkIntact``, ``checkVariables``) and the per-Variable scales valid.
"""

from dataclasses import dataclass, field

import numpy

from minidl.backend import xp
from minidl.errors import OptimizerError
from minidl.validation import checkNumber


def computeType(dtype):
    """The dtype a kernel computes in for parameters of ``dtype``: float32 for float16 and float32, else float64."""
    return numpy.promote_types(dtype, numpy.float32)


def stateArray(param, fill=0.0):
    """A state array for ``param``, filled with ``fill``, of the compute type (``computeType``): float32 for float16
    parameters (a half accumulator loses small squared gradients: 1e-4² is 0 in float16)."""
    return xp.full(param.shape, fill, dtype=computeType(param.dtype))


@dataclass(frozen=True)
class Span:
    """A Variable's stretch [start, stop) of its group's flat arrays, and the arrays it was given there."""

    name: str
    var: object
    start: int
    stop: int
    data: object
    grad: object

    def intact(self):
        """False once someone rebinds the Variable's data or grad, leaving the optimizer's arrays behind."""
        return self.var.data is self.data and self.var.grad is self.grad


@dataclass
class StateGroup:
    """Arrays updated together: parameters, gradients, state, float32 master parameters (None unless the
    parameters are float16 and master weights are on), the one-element ``gradScale`` of the compute type that
    turns gradients into true gradients (a loss scaler's 1/scale, else 1), and which Variables they hold."""

    param: object
    grad: object
    state: dict
    master: object = None
    gradScale: object = None
    spans: list = field(default_factory=list)

    def runs(self, attr="learnRate"):
        """Stretches of consecutive Variables sharing one value of ``var.<attr>``: (value, start, stop)."""
        runs = []
        for span in self.spans:
            value = getattr(span.var, attr)
            if runs and runs[-1][0] == value:
                runs[-1][2] = span.stop
            else:
                runs.append([value, span.start, span.stop])
        return runs

    def arrays(self, start, stop):
        """param, grad, state and master (or None) for the stretch [start, stop) (all of them when it covers the
        group)."""
        if start == 0 and stop == self.param.size:
            return self.param, self.grad, self.state, self.master
        part = slice(start, stop)
        master = None if self.master is None else self.master[part]
        return self.param[part], self.grad[part], {key: value[part] for key, value in self.state.items()}, master

    def values(self, start, stop):
        """The parameters' true values for [start, stop): the masters where there are, else the parameters."""
        param, _, _, master = self.arrays(start, stop)
        return param if master is None else master


def localGroups(variables, makeState):
    """One group per Variable of ``variables`` (name: Variable), its state made by ``makeState(param)``."""
    groups = []
    for name, var in variables.items():
        span = Span(name, var, 0, var.data.size, var.data, var.grad)
        groups.append(StateGroup(var.data, var.grad, makeState(var.data), spans=[span]))
    return groups


def globalGroups(variables, makeState):
    """One group per dtype: the Variables' data and grads copied into flat buffers, and the Variables made views
    into them."""
    groups = []
    for dtype in dict.fromkeys(var.data.dtype for var in variables.values()):
        members = {name: var for name, var in variables.items() if var.data.dtype == dtype}
        total = sum(var.data.size for var in members.values())
        param, grad = xp.empty(total, dtype=dtype), xp.empty(total, dtype=dtype)
        group = StateGroup(param, grad, makeState(param))
        offset = 0
        for name, var in members.items():
            start, stop = offset, offset + var.data.size
            param[start:stop] = var.data.ravel()
            grad[start:stop] = var.grad.ravel()
            var.data = param[start:stop].reshape(var.data.shape)
            var.grad = grad[start:stop].reshape(var.grad.shape)
            group.spans.append(Span(name, var, start, stop, var.data, var.grad))
            offset = stop
        groups.append(group)
    return groups


def stateTable(groups):
    """Every state array, per Variable: ``{"<var name>.<state name>": array}`` shaped like the Variable, and
    ``"<var name>.master"`` for float32 master parameters: views into the groups' arrays, so writing them restores
    the state."""
    table = {}
    for group in groups:
        arrays = {**group.state, **({} if group.master is None else {"master": group.master})}
        for span in group.spans:
            for key, array in arrays.items():
                flat = array.reshape(-1)[span.start:span.stop]
                table[f"{span.name}.{key}"] = flat.reshape(span.var.data.shape)
    return table


def checkIntact(groups):
    """OptimizerError if a Variable's data or grad was rebound after setupOn (the groups' arrays left behind)."""
    for group in groups:
        for span in group.spans:
            if not span.intact():
                raise OptimizerError(f"Variable {span.name!r} was rebound after setupOn; call setupOn again")


def checkVariables(module, groups):
    """OptimizerError unless ``module`` still holds the Variables the groups were made for (``setVar`` after setupOn
    would leave a new Variable untrained, its gradient growing forever)."""
    table = module.getVarTable()
    known = {span.name: span.var for group in groups for span in group.spans}
    for name, var in table.items():
        if known.get(name) is not var:
            raise OptimizerError(f"Variable {name!r} of {module!r} was replaced or added after setupOn, so the "
                                 "optimizer does not update it: call setupOn again")
    for name in known.keys() - table.keys():
        raise OptimizerError(f"Variable {name!r} was removed from {module!r} after setupOn: call setupOn again")


def checkScales(groups, attrs):
    """OptimizerError unless each Variable's ``attrs`` (its ``learnRate``; ``wc`` too, read by the hooks) are finite
    numbers >= 0: checked before a step changes anything, as a bad scale would fail half-way through it."""
    for group in groups:
        for span in group.spans:
            for attr in attrs:
                checkNumber(getattr(span.var, attr), f"Variable {span.name!r} {attr}", OptimizerError, low=0.0)
