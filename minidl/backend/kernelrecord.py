"""The Elementwise kernel calls a block of code makes, recorded in order: the material a step replay list is made of
(issue 25), and what tells whether a step can be replayed from it.

    with recordingKernels() as calls:
        trainer.step(data, labels)
    calls[0].kernel, calls[0].args, calls[0].size     # the Elementwise, its arguments as passed, size=

``compareSteps(first, second)`` sets two recordings of the same step side by side and says, per call, what a
replay list that keeps the first step's argument objects would get wrong in the second: an array that is a new
buffer (the module allocated it during the step, so the recorded pointer no longer holds the step's data), an
array that is a new view of the same memory (harmless to a pointer list, fatal to a list keyed on objects), a
scalar whose value changed (a learning rate, a random counter: it must be read at replay, not baked in), or a
different kernel or argument count (control flow that depends on the step). A call through ``Elementwise.__call__``
is recorded before it is checked or run (one its checks refuse included), on every device and CPU path;
``callNumpy`` and ``callCompiled``, the tests' direct paths, are not recorded.
"""

import contextlib
from typing import NamedTuple

from minidl.backend.device import isArray

active = []  # the lists of the recordings in progress (Elementwise.__call__ tests it: empty, it records nothing)


class KernelCall(NamedTuple):
    """One Elementwise call: the kernel, its arguments as the caller passed them, the ``size=`` given (or None)."""

    kernel: object
    args: tuple
    size: object


def note(kernel, args, size):
    """Add a call to every recording in progress (``Elementwise.__call__`` calls it while one is)."""
    call = KernelCall(kernel, args, size)
    for calls in active:
        calls.append(call)


@contextlib.contextmanager
def recordingKernels():
    """Record the Elementwise calls made inside the block, in order, into the list it yields."""
    calls = []
    active.append(calls)
    try:
        yield calls
    finally:
        active.remove(calls)


def _address(array):
    """The address of an array's first element, on every device (``data.ptr`` on CuPy and the simulated device)."""
    interface = getattr(array, "__array_interface__", None)
    return interface["data"][0] if interface is not None else array.data.ptr


class StepDifference(NamedTuple):
    """How the calls of two recordings of one step differ, counted over the calls they share."""

    calls: int  # the first recording's calls
    sameCalls: bool  # the same kernels in the same order (else the counts below cover the common prefix)
    stableCalls: int  # calls whose arrays are the same objects and whose scalars are equal
    newViews: int  # calls with an array that is another object over the same memory (and none newly allocated)
    newBuffers: int  # calls with an array at another address: allocated during the step
    changedScalars: tuple  # (kernel name, parameter name) of each scalar that differs
    reallocating: tuple  # (kernel name, parameter name) of each array at another address


def compareSteps(first, second):
    """A ``StepDifference`` of two recordings (lists of ``KernelCall``) of the same step."""
    sameCalls = len(first) == len(second)
    stable = views = buffers = 0
    changed, moved = [], []
    for a, b in zip(first, second):
        if a.kernel is not b.kernel or len(a.args) != len(b.args):
            sameCalls = False
            break
        newView = newBuffer = newScalar = False
        for param, x, y in zip(a.kernel.params, a.args, b.args):
            if isArray(x) and isArray(y):
                if x is y:
                    continue
                if _address(x) == _address(y) and x.shape == y.shape:
                    newView = True
                else:
                    newBuffer = True
                    moved.append((a.kernel.name, param.name))
            elif isArray(x) or isArray(y) or (x != y and not (x != x and y != y)):  # NaN equals NaN here
                newScalar = True
                changed.append((a.kernel.name, param.name))
        stable += not (newView or newBuffer or newScalar)
        views += newView and not newBuffer
        buffers += newBuffer
    return StepDifference(len(first), sameCalls, stable, views, buffers, tuple(dict.fromkeys(changed)),
                          tuple(dict.fromkeys(moved)))
