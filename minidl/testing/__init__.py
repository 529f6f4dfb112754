"""Test helpers for users' kernels and modules, the ones minidl's own tests use.

- ``checkKernel(kernel, cases=None, oracle=None)``: hypothesis draws arguments for an ``Elementwise`` (shapes,
  dtypes, scalars, and NaN, ±inf, -0.0 and subnormals among the values) and holds every path that can run here
  (the NumPy reference, the CUDA text compiled for the host, CuPy on a GPU) to each other, and the NumPy
  reference to an optional float64 oracle.
- ``checkReduction(kernel, cases=None, oracle=None, bounds=None)``: the same for a ``Reduction``, its paths held
  to each other within an error bound the test states from the maths (they sum in different orders; ``sumBound``
  states a sum's), NaN positions and infinities exactly.
- ``checkGradients(module, inputs)`` and ``checkCostGradient(cost, pred, target)``: float64 numerical gradient
  checks by central differences, of a module's input and parameter gradients (several inputs, graphs) and of a
  cost's gradient.
- Strategies to build cases with: ``arrays``, ``shapes``, ``floatDtypes``, and the lower-level pieces
  (``runPath``, ``kernelPaths``, ``assertMatches``) for checks that step a kernel several times.

hypothesis is a test-time dependency (``pip install 'minidl[test]'``); ``import minidl`` never needs it.
"""

from minidl.errors import TestingError

try:
    import hypothesis  # noqa: F401
except ModuleNotFoundError as error:
    raise TestingError(
        "minidl.testing needs hypothesis, a test-time dependency: pip install 'minidl[test]'"
    ) from error

from minidl.testing.compare import TOLERANCES, assertMatches  # noqa: E402
from minidl.testing.gradients import checkCostGradient, checkGradients  # noqa: E402
from minidl.testing.kernels import checkKernel, kernelPaths, packageKernels, runPath  # noqa: E402
from minidl.testing.reductions import checkReduction, packageReductions, sumBound  # noqa: E402
from minidl.testing.strategies import (  # noqa: E402
    arrays,
    f32,
    floatDtypes,
    rowLengths,
    shapes,
    spans,
    specialValues,
    withSpecials,
)

__all__ = [
    "TOLERANCES", "assertMatches", "arrays", "checkCostGradient", "checkGradients", "checkKernel", "checkReduction",
    "f32", "floatDtypes", "kernelPaths", "packageKernels", "packageReductions", "rowLengths", "runPath", "shapes",
    "spans", "specialValues", "sumBound", "withSpecials",
]
