"""The tape (minidl.backend.tape): what it records of a block on NumPy arrays, that a replay computes the block again
into the same arrays, and what it refuses."""

import numpy
import pytest

from minidl import BackendError, backend
from minidl.backend import hostkernel, xp
from minidl.backend.tape import CaptureError, Recorder, Tape, Traced, liveValues

pytestmark = pytest.mark.skipif(backend.isGpu, reason="a tape records NumPy arrays (a device would take a CUDA graph)")


def record(block, *samples):
    tape = Tape()
    with tape.recording(xp):
        out = block(*(tape.input(sample) for sample in samples))
    return tape, out


def data(seed, shape=(3, 4)):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


def test_operators_functions_and_methods_replay_on_new_data():
    weights = data(9, (4, 5))

    def block(x):
        y = x @ weights
        y += 1.5
        z = xp.maximum(y, 0).astype(numpy.float64)
        total = z.sum(axis=0)
        flipped = xp.ascontiguousarray(z.T)
        return xp.concatenate([flipped.reshape(-1), total * 2, z[:, ::2].copy().ravel()])

    tape, out = record(block, data(1))
    for seed in (2, 3):
        tape.replay(data(seed))
        expected = block(data(seed))
        assert type(expected) is numpy.ndarray and out.tobytes() == expected.tobytes()


def test_kernel_calls_are_recorded_whole():
    relu = backend.Elementwise("tape_test_relu", "T x", "T y", "y = x > 0 ? x : (T)0",
                               lambda x, y: numpy.maximum(x, 0, out=y))

    def block(x):
        return relu(x * 2, xp.empty_like(x))

    tape, out = record(block, data(1))
    assert [getattr(call[0], "name", None) for call in tape.calls] == [None, "tape_test_relu"]
    tape.replay(data(4))
    numpy.testing.assert_array_equal(out, numpy.maximum(data(4) * 2, 0))


def test_compiled_kernel_calls_replay_through_bindings_of_their_own(monkeypatch):
    """A compiled call is recorded bound to its arguments (``hostkernel.BoundCall``): a replay runs it without the
    kernel's Python checks, and two calls of one kernel with different scalars each keep their own."""
    scale = backend.Elementwise("tape_test_bound_scale", "T x, float32 a", "T y", "y = x * a",
                                lambda x, a, y: numpy.multiply(x, a, out=y))
    rowMax = backend.Reduction("tape_test_bound_max", "T x", "T y", "x", "max(a, b)", "y = a", "-INFINITY",
                               reference=lambda x, y, axis, keepdims: numpy.amax(x, axis, out=y, keepdims=keepdims))

    def block(x):
        doubled = scale(x, 2.0, xp.empty_like(x))
        tripled = scale(x, 3.0, xp.empty_like(x))
        return doubled, tripled, rowMax(tripled, xp.empty(x.shape[0], x.dtype), axis=1)

    tape, (doubled, tripled, maxima) = record(block, data(1))
    compiled = hostkernel.runsCompiled("compiled")
    assert [type(call[0]) is hostkernel.BoundCall for call in tape.calls] == [compiled] * 3
    if compiled:  # a replay takes none of the kernels' own checks
        monkeypatch.setattr(scale, "checkArgs", None)
        monkeypatch.setattr(rowMax, "checkArgs", None)
    tape.replay(data(6))
    assert doubled.tobytes() == (data(6) * numpy.float32(2)).tobytes()
    assert tripled.tobytes() == (data(6) * numpy.float32(3)).tobytes()
    assert maxima.tobytes() == (data(6) * numpy.float32(3)).max(axis=1).tobytes()


def test_a_reduction_over_every_axis_is_kept_as_a_zero_d_array():
    tape, out = record(lambda x: (x * x).sum(), data(1))
    assert isinstance(out, Traced) and out.shape == ()
    tape.replay(data(5))
    assert out[()] == (data(5) * data(5)).sum()


def test_host_reads_and_unrecordable_methods_are_refused():
    for block, what in ((lambda x: float(x.sum()), "float"), (lambda x: x.argmax(axis=1), "argmax"),
                        (lambda x: bool((x > 0).any()), "bool"), (lambda x: x[0, 0] + 1, "one element")):
        with pytest.raises(CaptureError, match=what):
            record(block, data(1))
        assert Recorder.tape is None and xp.matmul is numpy.matmul  # the namespace is put back


def test_replay_checks_its_inputs_before_it_writes():
    tape, out = record(lambda x: x * 3, data(1))
    before = out.copy()
    with pytest.raises(CaptureError, match=r"shape \(3, 4\) and dtype float32, got \(2, 4\)"):
        tape.replay(data(2, (2, 4)))
    with pytest.raises(CaptureError, match="float32, got .* float64"):
        tape.replay(data(2).astype(numpy.float64))
    with pytest.raises(CaptureError, match="1 inputs, got 2"):
        tape.replay(data(2), data(3))
    numpy.testing.assert_array_equal(out, before)


def test_recordings_do_not_nest_and_the_namespace_is_restored_after_an_error():
    tape = Tape()
    with pytest.raises(ZeroDivisionError):
        with tape.recording(xp):
            assert xp.matmul is not numpy.matmul
            with pytest.raises(CaptureError, match="do not nest"):
                with Tape().recording(xp):
                    pass
            raise ZeroDivisionError
    assert xp.matmul is numpy.matmul and Recorder.tape is None


def test_outside_a_recording_a_traced_array_is_an_ordinary_array():
    traced = data(1).view(Traced)
    assert float(traced.sum()) == pytest.approx(float(data(1).sum()))
    assert traced.argmax() == data(1).argmax()


def recordTwice(block):
    """Two recordings of ``block`` (called with the tape's input and the recording's number), the second following
    the first."""
    tapes = []
    for number in range(2):
        tape, _ = record(lambda x, number=number: block(x, number), data(number))
        tapes.append(tape)
    tapes[1].follow(tapes[0])
    return tapes[1]


def test_a_live_value_is_read_again_at_each_replay():
    counter = {"step": 0}
    scale = backend.Elementwise("tape_test_scale", "T x, int64 k", "T y", "y = x * (T)k",
                                lambda x, k, y: numpy.multiply(x, x.dtype.type(k), out=y))

    def block(x, number):
        step, = liveValues((counter["step"],), lambda: (counter["step"],))
        return scale(x, step, xp.empty_like(x))

    counter["step"] = 3
    tape = recordTwice(block)
    out = tape.calls[-1][1][2]
    for step in (5, 9):
        counter["step"] = step
        tape.replay(data(7))
        numpy.testing.assert_array_equal(out, data(7) * step)
    counter["step"] = 2 ** 70  # too large for its int64 parameter: the kernel's own checks say so
    with pytest.raises(BackendError, match="scalar k does not fit int64"):
        tape.replay(data(7))


def test_following_refuses_what_a_replay_would_get_wrong():
    hidden = {}

    def unseen(x, number):  # an operator on untraced arrays only: no hook sees it
        hidden["copy"] = x.view(numpy.ndarray) * 1
        return hidden["copy"].view(Traced) + x

    # the first `size` values; its reference, which no size reaches, copies all: only the refusal is checked
    head = backend.Elementwise("tape_test_head", "raw T x", "raw T y", "y[i] = x[i]",
                               lambda x, y: numpy.copyto(y, x))

    cases = [(lambda x, number: x * (1.0 + number), "changes from call to call .*1.0, then 2.0"),
             (lambda x, number: head(x, xp.zeros_like(x), size=x.size - number),  # a bound call keeps its size
              "changes from call to call .*12, then 11"),
             (lambda x, number: x * 2 if number else x + 2, "change its work from call to call .*multiply"),
             (lambda x, number: x + 1 if number else x.sum(axis=0), "change its work from call to call"),
             (unseen, "read an array made where no hook saw it")]
    for block, message in cases:
        with pytest.raises(CaptureError, match=message):
            recordTwice(block)
