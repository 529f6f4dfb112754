"""DeviceGraph and live values (minidl.backend.devicegraph, minidl.backend.livevalues): a block captured once, launched
with new inputs and the numbers it reads anew, bit for bit what an ordinary run of the block gives. They need a
device: the simulated one (MINIDL_BACKEND=simulated, CI's second run) or a GPU."""

import weakref

import numpy
import pytest

from minidl import backend
from minidl.backend import Elementwise, xp
from minidl.backend.tape import liveValues
from minidl.errors import BackendError

pytestmark = pytest.mark.skipif(not backend.isGpu, reason="a device graph: the simulated device (CI's second run) "
                                                          "or a GPU")



def scaleNumpy(x, a, seed, y):
    y[...] = x * a + y.dtype.type(seed % 7)


scaleKer = Elementwise("test_live_scale", "T x, T a, uint64 seed", "T y", "y = x * a + (T)(seed % 7)",
                       reference=scaleNumpy)


def device(values, dtype=numpy.float32):
    return backend.toDevice(numpy.asarray(values, dtype=dtype))


def test_a_graph_reads_its_live_values_anew_at_each_launch_with_the_bits_of_a_call():
    from minidl.backend.devicegraph import DeviceGraph

    numbers = {"a": 0.1, "seed": 2**64 - 1}  # a float64 rounded to the kernel's float32, a uint64 at its top

    def read():
        return numbers["a"], numbers["seed"]

    def block(x):
        a, seed = liveValues(read(), read)
        return scaleKer(x, a, seed, xp.empty_like(x)) * 2

    graph = DeviceGraph()
    out = graph.capture(block, device([1, 2, 3]))
    graph.launch(device([1, 2, 3]), renew=False)  # the capture's own numbers
    expected = scaleKer(device([1, 2, 3]), 0.1, 2**64 - 1, xp.empty(3, numpy.float32)) * 2
    assert backend.toHost(out).tobytes() == backend.toHost(expected).tobytes()
    numbers.update(a=-3.7, seed=12345)
    graph.launch(device([4, 5, 6]))
    expected = scaleKer(device([4, 5, 6]), -3.7, 12345, xp.empty(3, numpy.float32)) * 2
    assert backend.toHost(out).tobytes() == backend.toHost(expected).tobytes()


def test_a_launch_with_inputs_of_another_shape_changes_nothing():
    from minidl.backend.devicegraph import DeviceGraph

    graph = DeviceGraph()
    out = graph.capture(lambda x: x + 1, device([1, 2]))
    graph.launch(device([1, 2]), renew=False)
    for wrong in (device([1, 2, 3]), device([1, 2], numpy.float64)):
        with pytest.raises(ValueError, match="captured for an input"):
            graph.launch(wrong)
    with pytest.raises(ValueError, match="takes 1 inputs, got 2"):
        graph.launch(device([1, 2]), device([1, 2]))
    assert backend.toHost(out).tolist() == [2, 3]


def test_a_live_value_used_on_the_host_is_refused_and_the_capture_ended():
    from minidl.backend.devicegraph import DeviceGraph
    from minidl.backend.livevalues import CaptureLiveError

    def block(x):
        step, = liveValues((3,), lambda: (3,))
        return x * float(step)

    graph = DeviceGraph()
    with pytest.raises(CaptureLiveError, match="used its live value 3 on the host"):
        graph.capture(block, device([1, 2]))
    assert not graph.stream.is_capturing()
    assert float(device([1, 2]).sum()) == 3  # the device works on: no capture is left open


def test_a_live_value_is_refused_by_a_cpu_kernel():
    from minidl.backend.livevalues import LiveTable

    table = LiveTable()
    live, = table.add((2.0,), lambda: (2.0,))
    with pytest.raises(BackendError, match="live value of a device graph's capture passed to a CPU kernel"):
        scaleKer(numpy.ones(2, numpy.float32), live, 1, numpy.empty(2, numpy.float32))


def test_a_reduction_given_a_live_value_refuses_the_capture():
    """A Reduction reads its scalars as launch arguments only: given a live value it raises CaptureLiveError (a
    captured step then runs ordinarily) instead of freezing the number in the graph."""
    from minidl.backend import Reduction
    from minidl.backend.devicegraph import DeviceGraph
    from minidl.backend.livevalues import CaptureLiveError

    def scaledSumNumpy(x, scale, y):
        y[...] = (x * scale).sum()

    scaledSum = Reduction("test_live_scaled_sum", "T x, T scale", "T y", "x * scale", "a + b", "y = a", "0",
                          reference=scaledSumNumpy)

    def block(x):
        scale, = liveValues((2.0,), lambda: (2.0,))
        return scaledSum(x, scale, xp.empty((), dtype=x.dtype))

    with pytest.raises(CaptureLiveError, match="test_live_scaled_sum: a Reduction reads no live value"):
        DeviceGraph().capture(block, device([1, 2]))
    assert float(scaledSum(device([1, 2]), 2.0, xp.empty((), numpy.float32))) == 6


@pytest.mark.skipif(backend.name != "simulated", reason="copies left queued: the simulated device's events, patched")
def test_the_pinned_numbers_of_a_queued_copy_stay_as_they_were_until_it_is_done(monkeypatch):
    """A launch's live values go to the device by an asynchronous copy from page-locked memory, which the GPU reads
    when it reaches the copy, the host having moved on: the buffer must be held, unchanged, until the copy's event
    is done. Freed at once, CuPy's pinned pool hands the block to the next launch, which writes its own numbers
    there before the earlier copy has read them (two steps with one random draw)."""
    from minidl.backend import simulated
    from minidl.backend.devicegraph import DeviceGraph

    numbers = {"seed": 1}

    def read():
        return (numbers["seed"],)

    graph = DeviceGraph()
    graph.capture(lambda x: scaleKer(x, 1.0, *liveValues(read(), read), xp.empty_like(x)), device([0, 0]))
    copies, setter = [], simulated.ndarray.set

    def queued(self, arr, stream=None):
        copies.append((weakref.ref(arr), arr.copy()))
        return setter(self, arr, stream)

    monkeypatch.setattr(simulated.ndarray, "set", queued)
    monkeypatch.setattr(simulated.cupy.cuda.Event, "done", property(lambda self: False))  # every copy still queued
    for seed in (3, 4, 5):
        numbers["seed"] = seed
        graph.launch(device([0, 0]))
    assert len(copies) == 3
    for held, numbersThen in copies:
        assert held() is not None and held().tobytes() == numbersThen.tobytes()


def test_a_live_value_that_does_not_fit_its_parameter_is_refused_as_an_argument_is():
    """A launch converts each live value as a kernel converts a scalar argument: one that does not fit (a NumPy
    int64 -1 for a uint64 seed, which NumPy's cast wraps to 2^64 - 1) raises before the graph runs."""
    from minidl.backend.devicegraph import DeviceGraph

    numbers = {"seed": 5}

    def read():
        return 1.0, numbers["seed"]

    graph = DeviceGraph()
    out = graph.capture(lambda x: scaleKer(x, *liveValues(read(), read), xp.empty_like(x)), device([1, 2]))
    graph.launch(device([1, 2]), renew=False)
    before = backend.toHost(out).tolist()
    for seed in (-1, numpy.int64(-1), 2**64):
        numbers["seed"] = seed
        with pytest.raises(BackendError, match="does not fit uint64"):
            scaleKer(device([1, 2]), 1.0, seed, xp.empty(2, numpy.float32))
        with pytest.raises(BackendError, match="does not fit uint64"):
            graph.launch(device([1, 2]))
        assert backend.toHost(out).tolist() == before
