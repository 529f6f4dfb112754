"""UpdateRule: an optimizer's update, declared once: its hyperparameters with their ranges (``Hyper``), its state
arrays with their fill and sign (``State``), and its operation in terms of ``grad`` and ``param``, run as two
kernels.

    direct: (T scaledGrad, raw S gradScale, raw int32 skip, S launch values..., T param, S states...)
    master: (T scaledGrad, raw S gradScale, raw int32 skip, S launch values..., S param, S states..., T halfParam)

The launch values are the hyperparameters, in their order, unless the rule names others (``launch``: Adam's
learning rate and bias corrections), which its optimizer then computes in ``hyperValues``; a launch value is of the
compute type S unless the rule declares it whole (``"raw float64 bias"``: a device array the kernel reads).

Where ``skip[0]`` is set (the non-finite guard's flag, ``minidl.optim.guard``), an element changes nothing. Both
kernels begin with ``const S grad = (S)scaledGrad * gradScale[0]``: the gradient, unscaled (a loss scaler's
1/scale, else 1) in the compute type S. S is bound by ``gradScale``, a one-element device array of the compute type
(float32 for float16 and float32 parameters, float64 for float64 ones), and by the state arrays, so every
hyperparameter reaches the kernel in the compute type on every path. The master kernel updates float32 master
parameters and state and writes their float16 copy ``halfParam = (T)param`` (round to nearest) in the same launch.
It first takes the float16 value as its master where the two differ (``(S)halfParam - (S)(T)param != 0``: a
difference, as g++ turns a comparison of the two into a slow library call): the parameters were changed in place
since the last step (``Variable.set``, ``Module.load``), and that change wins.

The rule's NumPy reference takes ``(grad, launch values..., param, states...)`` with ``grad`` already of type S,
and updates param and the states in place; the kernels' references wrap it.
"""

from dataclasses import dataclass

import numpy

from minidl.backend import Elementwise, scratch
from minidl.errors import OptimizerError
from minidl.validation import checkInteger, checkNumber


class Hyper:
    """A hyperparameter: a finite real number in [low, high] (``high=None``: no upper bound; either end open when
    asked). As an attribute of an optimizer it checks every assignment, the constructor's included."""

    def __init__(self, low=0.0, high=None, lowOpen=False, highOpen=False):
        self.bounds = {"low": low, "high": high, "lowOpen": lowOpen, "highOpen": highOpen}
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        if self.name not in obj.__dict__:
            raise AttributeError(f"{type(obj).__name__}.{self.name} has not been set")
        return obj.__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = checkNumber(value, self.name, OptimizerError, **self.bounds)


class Count:
    """A count of steps as an attribute: an integer >= 0 (``validation.checkInteger``), checked on every
    assignment."""

    def __init__(self, doc):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = checkInteger(value, self.name, OptimizerError, minimum=0)


@dataclass(frozen=True)
class State:
    """A state array of a rule, shaped like the parameter: its value before the first step, and whether every
    value a run can give it is >= 0 (accumulated squares; a loaded state that is not is refused)."""

    fill: float = 0.0
    nonNegative: bool = False


class UpdateRule:
    """The direct and master kernels of one update rule: ``name``, its hyperparameters (name: ``Hyper``, in launch
    order unless ``launch`` names the kernel's values), its states (name: ``State``), its CUDA ``operation`` and
    its NumPy ``reference``."""

    def __init__(self, name, hypers, states, operation, reference, launch=None):
        self.hypers, self.states, self.reference = dict(hypers), dict(states), reference
        for hyperName, hyper in self.hypers.items():
            hyper.__set_name__(None, hyperName)
        self.launch = tuple(self.hypers if launch is None else launch)
        inParams = ", ".join(["T scaledGrad", "raw S gradScale", "raw int32 skip",
                              *(value if " " in value else f"S {value}" for value in self.launch)])
        stateParams = "".join(f", S {state}" for state in self.states)
        prologue = "if (skip[0] == 0) { const S grad = (S)scaledGrad * gradScale[0];"
        self.direct = Elementwise(name, inParams, f"T param{stateParams}", f"{prologue}{operation};}}",
                                  self._beside(self._directNumpy, "direct"))
        self.master = Elementwise(
            f"{name}_master", inParams, f"S param{stateParams}, T halfParam",
            f"{prologue}if ((S)halfParam - (S)(T)param != 0) param = (S)halfParam;{operation};halfParam = (T)param;}}",
            self._beside(self._masterNumpy, "master"),
        )

    def __repr__(self):
        return f"UpdateRule({self.direct.name!r})"

    def _beside(self, method, kind):
        """``method`` as a function that belongs to the rule's module (where its reference is), as the kernel's
        reference: the kernel registry tells kernels apart by their references' modules."""

        def reference(*args):
            method(*args)

        reference.__module__ = self.reference.__module__
        reference.__name__ = reference.__qualname__ = f"{self.reference.__name__}_{kind}"
        return reference

    @staticmethod
    def _unscaled(scaledGrad, gradScale):
        grad = scratch(scaledGrad.shape, gradScale.dtype, "unscaledGrad")
        numpy.multiply(scaledGrad, gradScale[0], out=grad, dtype=gradScale.dtype)
        return grad

    def _directNumpy(self, scaledGrad, gradScale, skip, *rest):
        if skip[0] == 0:
            self.reference(self._unscaled(scaledGrad, gradScale), *rest)

    def _masterNumpy(self, scaledGrad, gradScale, skip, *rest):
        if skip[0] != 0:
            return
        *rest, halfParam = rest
        master = rest[len(self.launch)]
        difference = scratch(master.shape, master.dtype, "masterChange")
        numpy.subtract(halfParam, master.astype(halfParam.dtype), out=difference, dtype=master.dtype)
        changed = difference != 0
        if changed.any():
            master[changed] = halfParam[changed]
        self.reference(self._unscaled(scaledGrad, gradScale), *rest)
        halfParam[...] = master
