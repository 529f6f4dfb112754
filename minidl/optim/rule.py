"""UpdateRule: an optimizer's update, written once in terms of ``grad`` and ``param``, run as two kernels.

    direct: (T scaledGrad, raw S gradScale, raw int32 skip, S hypers..., T param, S states...)
    master: (T scaledGrad, raw S gradScale, raw int32 skip, S hypers..., S param, S states..., T halfParam)

Where ``skip[0]`` is set (the non-finite guard's flag, ``minidl.optim.guard``), an element changes nothing. Both
begin with ``const S grad = (S)scaledGrad * gradScale[0]``: the gradient, unscaled (a loss scaler's 1/scale,
else 1) in the compute type S. S is bound by ``gradScale``, a one-element device array of the compute type
(float32 for float16 and float32 parameters, float64 for float64 ones), and by the state arrays, so every
hyperparameter reaches the kernel in the compute type on every path. The master kernel updates float32 master
parameters and state and writes their float16 copy ``halfParam = (T)param`` (round to nearest) in the same launch.
It first takes the float16 value as its master where the two differ (``(S)halfParam - (S)(T)param != 0``: a
difference, as g++ turns a comparison of the two into a slow library call): the parameters were changed in place
since the last step (``Variable.set``, ``Module.load``), and that change wins.

The rule's NumPy reference takes ``(grad, hypers..., param, states...)`` with ``grad`` already of type S, and
updates param and the states in place; the kernels' references wrap it.
"""

import numpy

from minidl.backend import Elementwise, scratch

GRAD_SLOT = 7  # a scratch slot of its own: the rules' references use the first ones


class UpdateRule:
    """The direct and master kernels of one update rule (``name``, its hyperparameter and state names)."""

    def __init__(self, name, hypers, states, operation, reference):
        self.hypers, self.states, self.reference = tuple(hypers), tuple(states), reference
        inParams = ", ".join(["T scaledGrad", "raw S gradScale", "raw int32 skip",
                              *(f"S {hyper}" for hyper in self.hypers)])
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
        grad = scratch(scaledGrad.shape, gradScale.dtype, slot=GRAD_SLOT)
        numpy.multiply(scaledGrad, gradScale[0], out=grad, dtype=gradScale.dtype)
        return grad

    def _directNumpy(self, scaledGrad, gradScale, skip, *rest):
        if skip[0] == 0:
            self.reference(self._unscaled(scaledGrad, gradScale), *rest)

    def _masterNumpy(self, scaledGrad, gradScale, skip, *rest):
        if skip[0] != 0:
            return
        *rest, halfParam = rest
        master = rest[len(self.hypers)]
        difference = scratch(master.shape, master.dtype, slot=GRAD_SLOT + 1)
        numpy.subtract(halfParam, master.astype(halfParam.dtype), out=difference, dtype=master.dtype)
        changed = difference != 0
        if changed.any():
            master[changed] = halfParam[changed]
        self.reference(self._unscaled(scaledGrad, gradScale), *rest)
        halfParam[...] = master
