"""CapturedForward: a module's eval-mode forward pass recorded once per input shape and replayed (issue 25).

    forward = CapturedForward(net)
    out = forward(data)            # the first call of a shape runs ordinarily, the second records (and checks) it,
                                   # the later ones replay

A replay runs the recorded array work (``minidl.backend.tape``) on the new data without the modules' Python: no
checks, no caches, no per-call geometry. It is trusted only once it has given the bits of an ordinary forward: a
shape's recording is checked by running the module on a second input both ways (the sample with its values moved
one place along the flat array, so that anything the tape missed shows as a stale value) and comparing every byte.
A shape whose recording cannot be made or does not agree is run ordinarily from then on, said once (a logged
warning naming why). The output is the tape's own array, overwritten by the next call of that shape: copy what you
keep. A module in train mode is run ordinarily (an eval forward changes nothing; a train forward changes its buffers,
BatchNorm's, which a replay must not do twice). A Variable rebound (``setVar``, ``calcMode``, an optimizer's
``setupOn``) makes every shape start again. On a GPU (and the simulated device) the recording is a CUDA graph
(``minidl.backend.devicegraph``), checked the same way; a forward that syncs or uploads while captured (CuPy refuses
both) runs ordinarily, said once.
"""

import logging

import numpy

from minidl.backend import isDeviceArray, isGpu, toHost, xp
from minidl.backend.devicegraph import DeviceGraph
from minidl.backend.livevalues import CaptureLiveError
from minidl.backend.tape import CaptureError, Tape
from minidl.errors import ModuleError
from minidl.nn.module import Module
from minidl.variable import Rebinds

log = logging.getLogger("minidl")


def shifted(sample):
    """The sample's values moved one place along the flat array (a second input of the same shape and range)."""
    return xp.roll(sample.reshape(-1), 1).reshape(sample.shape)


def sameBits(first, second):
    return first.shape == second.shape and first.dtype == second.dtype and first.tobytes() == second.tobytes()


class CapturedForward:
    def __init__(self, module):
        if not isinstance(module, Module):
            raise ModuleError(f"CapturedForward expects a Module, got {type(module).__name__}")
        self.module = module
        self.tapes = {}  # (shape, dtype) -> (tape or device graph, its output), or None where it runs ordinarily
        self.seen = set()  # shapes run once: a shape is recorded at its second call (a last partial batch is not)
        self.rebinds = Rebinds.count  # the tapes read the arrays bound when they were recorded

    def __call__(self, data):
        if self.module.train:
            return self.module(data)
        if self.rebinds != Rebinds.count:
            self.tapes, self.seen, self.rebinds = {}, set(), Rebinds.count
        key = (data.shape, data.dtype) if type(data) is numpy.ndarray or isDeviceArray(data) else None
        recorded = self.tapes.get(key, False)
        if recorded is False:
            if key not in self.seen:
                self.seen.add(key)
                return self.module(data)
            recorded = self.tapes[key] = self._captureGraph(data) if isGpu else self._record(data)
        if recorded is None:
            return self.module(data)
        tape, out = recorded
        tape.launch(data) if isGpu else tape.replay(data)
        return out

    def _captureGraph(self, data):
        """The device graph of this input's shape and its output array, checked; None (said once) where it cannot
        be."""
        if not isDeviceArray(data) or data.ndim == 0 or data.size < 2:
            return self._refused(data, "it captures device arrays of at least two values")
        second = shifted(xp.ascontiguousarray(data))
        expected = self.module(second)
        if not isDeviceArray(expected):
            return self._refused(data, f"the module returns {type(expected).__name__}, not one array")
        expected = toHost(expected)
        kept = self._deviceArrays()  # what the modules held before the capture
        graph = DeviceGraph()
        try:
            out = graph.capture(self.module, data)
        except (RuntimeError, CaptureLiveError) as error:  # CuPy's refusal of a sync or an upload in a capture
            return self._refused(data, f"it cannot be captured as a CUDA graph ({error})")
        graph.keep(kept + self._deviceArrays() + [var.data for var in self.module.getVarTable().values()])
        graph.launch(second, renew=False)
        if not sameBits(toHost(out), expected):
            return self._refused(data, "its replay did not give the bits of an ordinary forward pass")
        return graph, out

    def _deviceArrays(self):
        """The device arrays the module and its submodules hold as attributes now."""
        return [value for module in self.module.walk() for value in vars(module).values() if isDeviceArray(value)]

    def _record(self, data):
        """The tape of this input's shape and its output array, checked; None (said once) where it cannot be."""
        if not isinstance(data, numpy.ndarray) or data.ndim == 0 or data.size < 2:
            return self._refused(data, "it records NumPy arrays of at least two values")
        tape = Tape()
        second = shifted(numpy.ascontiguousarray(data))
        try:
            expected = self.module(second)
            if not isinstance(expected, numpy.ndarray):
                return self._refused(data, f"the module returns {type(expected).__name__}, not one array")
            expected = expected.copy()
            with tape.recording(xp):
                out = self.module(tape.input(data)).view(numpy.ndarray)
            tape.replay(second)
        except CaptureError as error:
            return self._refused(data, str(error))
        if not sameBits(numpy.asarray(out), expected):
            return self._refused(data, "its replay did not give the bits of an ordinary forward pass")
        return tape, out

    def _refused(self, data, why):
        log.warning("minidl: the forward pass of %r for input %s runs uncaptured: %s", self.module,
                    getattr(data, "shape", type(data).__name__), why)
        return None
