"""Recording the Elementwise calls of a block (minidl.backend.kernelrecord) and comparing two recordings of a step:
the calls themselves, in order, with the caller's objects, and each kind of difference a replay list must handle."""

import numpy

from minidl import backend
from minidl.backend import Elementwise
from minidl.backend.kernelrecord import active, compareSteps, recordingKernels


def scaleNumpy(x, a, y):
    numpy.multiply(x, a, out=y)


scale = Elementwise("test_record_scale", "T x, float32 a", "T y", "y = x * a", scaleNumpy)


def values(*items):
    return backend.toDevice(numpy.array(items, numpy.float32))


def test_a_recording_holds_each_call_in_order_with_the_callers_objects_and_the_calls_still_run():
    x, y, z = values(1, 2), values(0, 0), values(0, 0)
    scale(x, 1.5, y)
    with recordingKernels() as outer:
        scale(x, 2.0, y)
        with recordingKernels() as inner:
            scale(y, 3.0, z)
    scale(x, 4.0, y)  # after both blocks: recorded by neither
    assert [(call.kernel, call.args, call.size) for call in outer] == [(scale, (x, 2.0, y), None),
                                                                       (scale, (y, 3.0, z), None)]
    assert outer[1].args[0] is y and outer[1].args[2] is z
    assert [call.args for call in inner] == [(y, 3.0, z)]
    assert backend.toHost(z).tolist() == [6.0, 12.0] and backend.toHost(y).tolist() == [4.0, 8.0]
    assert active == []


def step(x, y, a, fresh=False, view=False):
    """One 'step' of two calls, allocating its intermediate anew (``fresh``) or passing a new view of it (``view``)."""
    middle = backend.xp.zeros_like(x) if fresh else y
    scale(x, a, middle[:] if view else middle)
    scale(middle, 2.0, x)


def twoSteps(x, y, firstScale, secondScale, **options):
    """compareSteps of two recorded steps with these scalars."""
    with recordingKernels() as first:
        step(x, y, firstScale, **options)
    with recordingKernels() as second:
        step(x, y, secondScale, **options)
    return compareSteps(first, second)


def test_the_same_arrays_and_scalars_each_step_are_stable():
    assert twoSteps(values(1, 2), values(0, 0), 0.5, 0.5) == (2, True, 2, 0, 0, (), ())


def test_an_array_allocated_in_the_step_a_new_view_and_a_changed_scalar_are_each_named():
    x = values(1, 2)
    fresh = twoSteps(x, None, 0.5, 0.5, fresh=True)
    assert (fresh.stableCalls, fresh.newViews, fresh.newBuffers) == (0, 0, 2)
    assert fresh.reallocating == (("test_record_scale", "y"), ("test_record_scale", "x"))

    changed = twoSteps(x, values(0, 0), 0.5, 0.25, view=True)
    assert (changed.stableCalls, changed.newViews, changed.newBuffers) == (1, 1, 0)
    assert changed.changedScalars == (("test_record_scale", "a"),) and changed.reallocating == ()


def test_a_step_that_calls_other_kernels_is_not_the_same_calls():
    x, y = values(1, 2), values(0, 0)
    with recordingKernels() as first:
        step(x, y, 0.5)
    with recordingKernels() as second:
        scale(x, 0.5, y)
    difference = compareSteps(first, second)
    assert not difference.sameCalls and difference.calls == 2 and difference.stableCalls == 1


def test_a_nan_scalar_passed_each_step_is_not_a_change():
    x, y = values(1, 2), values(0, 0)
    with recordingKernels() as first:
        scale(x, float("nan"), y)
    with recordingKernels() as second:
        scale(x, float("nan"), y)
    assert compareSteps(first, second).changedScalars == ()
