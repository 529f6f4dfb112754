"""The simulated device: CuPy's rules for device arrays, and a trace that counts exactly what a GPU would be asked.

The first tests use the simulated namespace directly and run in every suite run; those marked ``onSimulated`` need
minidl's backend to be the simulated device (MINIDL_BACKEND=simulated, CI's second run of the suite), where the
GPU branches of minidl itself (pinned uploads, scatter adds, the transport choice) run for real.
"""

import numpy
import pytest

from minidl import backend
from minidl.backend import simulated
from minidl.backend.elementwise import Elementwise
from minidl.backend.simulated import gpumodel, trace

cupy = simulated.cupy
onSimulated = pytest.mark.skipif(backend.name != "simulated",
                                 reason="a GPU branch of minidl: runs when MINIDL_BACKEND=simulated (CI's second run)")


def device(values, dtype=numpy.float32):
    return cupy.array(numpy.asarray(values, dtype=dtype))


def test_numpy_refuses_device_arrays_as_it_refuses_cupys():
    a = device([1.0, 2.0, 3.0])
    for refused in (lambda: numpy.asarray(a), lambda: numpy.sum(a), lambda: numpy.add.at(a, [0], 1.0),
                    lambda: numpy.put_along_axis(a, numpy.array([0]), 1.0, axis=0), lambda: a + numpy.ones(3),
                    lambda: numpy.ones(3) * a, lambda: a[numpy.newaxis].__setitem__(0, numpy.ones(3)),
                    lambda: numpy.float32(2) + numpy.ones(3) + a):
        with pytest.raises(TypeError):
            refused()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)
    assert isinstance(numpy.float32(2) * a, simulated.ndarray)  # a NumPy scalar mixes, as in CuPy


def test_every_crossing_to_the_host_is_a_sync_naming_its_line():
    a = device([[1.0, 2.0], [3.0, 4.0]])
    with trace.recording() as recorded:
        host = a.get()
        value = float(a.sum())
        first = a[0, 0].item()
        flag = bool(a[1, 1] > 3)
        listed = a.tolist()
        line = __import__("inspect").currentframe().f_lineno
    assert host.tolist() == listed == [[1.0, 2.0], [3.0, 4.0]] and value == 10.0 and first == 1.0 and flag
    assert [event.what for event in recorded.syncs] == ["get", "float", "item", "bool", "tolist"]
    assert all(event.where.endswith(f"test_simulated_device.py:{line - offset}")
               for event, offset in zip(recorded.syncs, (5, 4, 3, 2, 1)))
    assert recorded.summary()["deviceToHost"] == 5 and recorded.summary()["hostToDevice"] == 0


def test_launches_are_counted_with_threads_bytes_and_flops():
    a, b = device(numpy.ones((4, 8))), device(numpy.ones((8, 3)))
    with trace.recording() as recorded:
        view = a[1:3].T  # views launch nothing
        c = a * 2.0 + 1.0  # two launches of 32 threads
        product = a @ b  # one cuBLAS call: 2*4*3*8 FLOPs
        total = c.sum(axis=1)  # one reduction, 4 outputs of 8 values
    assert view.shape == (8, 2) and product.shape == (4, 3) and total.shape == (4,)
    names = [launch.name for launch in recorded.launches]
    assert names == ["multiply", "add", "matmul", "sum"]
    multiply, add, matmul, reduce = recorded.launches
    assert multiply.threads == 32 and multiply.bytesRead == 128 and multiply.bytesWritten == 128
    assert matmul.flops == 2 * 4 * 3 * 8 and recorded.summary()["products"] == 1
    assert reduce.threads == 32 and reduce.bytesWritten == 16
    assert recorded.summary()["syncs"] == 0


def test_stack_and_concatenate_launch_as_cupy_does():
    """CuPy 14: a copy per array up to 8 arrays; more small arrays of the result's dtype in one kernel, after a
    pageable copy of their pointers (and of their offsets and strides unless all are contiguous and of one length)."""
    parts = [device(numpy.full((2, 3), value)) for value in range(9)]
    with trace.recording() as few:
        stacked = cupy.stack(parts[:3], axis=1)
    assert [launch.name for launch in few.launches] == ["copy"] * 3 and not few.hostToDevice
    numpy.testing.assert_array_equal(stacked.get(), numpy.stack([part.get() for part in parts[:3]], axis=1))
    with trace.recording() as alike:
        cupy.concatenate(parts)
    assert [launch.name for launch in alike.launches] == ["concatenate"]
    assert [(copy.nbytes, copy.pinned) for copy in alike.hostToDevice] == [(72, False)]
    longer = device(numpy.ones((5, 3)))
    with trace.recording() as unlike:
        joined = cupy.concatenate(parts[:8] + [longer])
    assert len(unlike.launches) == 1 and [copy.nbytes for copy in unlike.hostToDevice] == [72, 72, 144]
    assert joined.shape == (21, 3)


def test_basic_indexing_gives_views_and_0d_arrays():
    a = device([1.0, 2.0, 3.0])
    element = a[1]
    assert isinstance(element, simulated.ndarray) and element.shape == ()
    a[1:] *= 10.0
    assert float(element) == 20.0 and a.get().tolist() == [1.0, 20.0, 30.0]


def test_the_keywords_cupy_honours_are_honoured():
    """``copyto``'s ``where`` copies only where it holds; the ``out`` of ``clip``, ``argmax``, ``var``, ``std`` and
    ``outer`` receives the result (the signatures are CuPy's, so a call with them must do what CuPy's does, not drop
    them)."""
    target, values = device([1.0, 2.0, 3.0, 4.0]), device([-1.0, -2.0, -3.0, -4.0])
    cupy.copyto(target, values, where=device([True, False, True, False], numpy.bool_))
    assert target.get().tolist() == [-1.0, 2.0, -3.0, 4.0]
    clipped = device([0.0] * 4)
    assert cupy.clip(target, -2.0, 2.0, out=clipped) is clipped
    assert clipped.get().tolist() == [-1.0, 2.0, -2.0, 2.0]
    where = device([7], numpy.int64).reshape(())
    assert cupy.argmax(target, out=where) is where and int(where) == 3
    assert target.argmin(out=where) is where and int(where) == 2
    spread, table = device(0.0).reshape(()), device(numpy.zeros((2, 2)))
    assert cupy.var(device([1.0, 3.0]), out=spread) is spread and float(spread) == 1.0
    assert cupy.std(device([1.0, 5.0]), out=spread) is spread and float(spread) == 2.0
    assert cupy.outer(device([1.0, 2.0]), device([3.0, 4.0]), out=table) is table
    assert table.get().tolist() == [[3.0, 4.0], [6.0, 8.0]]


def test_set_refuses_what_cupys_refuses():
    """CuPy's ``set``: another dtype is a TypeError (no cast), another shape a ValueError, an array neither C- nor
    F-contiguous a RuntimeError; nothing is copied then."""
    matrix = device(numpy.zeros((3, 4)))
    with trace.recording() as recorded:
        with pytest.raises(TypeError, match="float64 array cannot be set to float32 array"):
            matrix.set(numpy.ones((3, 4)))
        with pytest.raises(ValueError, match="Shape mismatch"):
            matrix.set(numpy.ones((4, 3), numpy.float32))
        with pytest.raises(RuntimeError, match="Cannot set to non-contiguous array"):
            matrix[:, :2].set(numpy.ones((3, 2), numpy.float32))
        matrix.T.set(numpy.ones((4, 3), numpy.float32))  # F-contiguous: CuPy copies it in Fortran order
    assert matrix.get().tolist() == [[1.0] * 4] * 3 and len(recorded.hostToDevice) == 1


def test_reshape_gives_a_view_wherever_the_strides_allow_as_cupys():
    """CuPy's reshape copies only where no strides give the new shape (``_get_strides_for_nocopy_reshape``): a
    column slice given an axis of one is a view, launching nothing, and a write through it reaches the original;
    a transposed matrix flattened is a copy (one launch)."""
    matrix = device(numpy.arange(12).reshape(3, 4))
    columns = matrix[:, :2]
    with trace.recording() as recorded:
        view = columns.reshape(3, 1, 2)
        flat = matrix.T.reshape(-1)
    assert [launch.name for launch in recorded.launches] == ["copy"]
    view[...] = -1.0
    assert matrix.get()[:, :2].tolist() == [[-1.0, -1.0]] * 3
    assert flat.get().tolist() == numpy.arange(12).reshape(3, 4).T.ravel().tolist()


def test_a_boolean_mask_reads_its_count_from_the_device_as_cupys():
    """CuPy's mask indexing, to read or to write, scans the mask and reads the count of True values to the host
    (``_prepare_mask_indexing_single``: ``int(mask_scanned[-1])``): a sync each, as ``nonzero``'s."""
    a = device([1.0, -2.0, 3.0])
    mask = a > 0
    with trace.recording() as recorded:
        picked = a[mask]
        a[mask] = 0.0
        a[:2] = 5.0  # basic indexing: no sync
    assert [(event.kind, event.nbytes) for event in recorded.syncs] == [("deviceToHost", 4)] * 2
    assert "test_simulated_device.py" in recorded.syncs[0].where
    assert picked.get().tolist() == [1.0, 3.0] and a.get().tolist() == [5.0, 5.0, 0.0]


def test_copies_from_the_host_say_pageable_or_pinned():
    host = numpy.arange(6, dtype=numpy.float32)
    pinned = simulated.cupyx.empty_pinned(6, numpy.float32)
    pinned[...] = host
    target = cupy.empty(6, dtype=numpy.float32)
    with trace.recording() as recorded:
        cupy.array(host)
        target.set(pinned)
        cupy.asarray(pinned)
    assert [event.pinned for event in recorded.hostToDevice] == [False, True, True]
    assert recorded.summary()["pageableCopies"] == 1 and target.get().tolist() == host.tolist()


def test_memory_high_water_counts_live_buffers():
    start = trace.liveBytes()
    with trace.recording() as recorded:
        big = cupy.zeros(1 << 18, dtype=numpy.float32)  # 1 MiB
        view = big[: 1 << 10]
        del big
        assert trace.liveBytes() - start == 1 << 20  # the view keeps its buffer
        del view
    assert recorded.memoryHighWater == 1 << 20 and trace.liveBytes() == start


def _axpyNumpy(x, a, y):
    y += a * x


AXPY = Elementwise("test_simulated_axpy", "T x, T a", "T y", "y += a * x", _axpyNumpy)


def test_an_elementwise_launch_runs_the_host_compiled_text():
    kernel = cupy.ElementwiseKernel(AXPY.inParams, AXPY.outParams, AXPY.operation, name=AXPY.name)
    x, y = device([1.0, 2.0, 3.0]), device([10.0, 10.0, 10.0])
    with trace.recording() as recorded:
        assert kernel(x, numpy.float32(2.0), y) is y
    assert y.get().tolist() == [12.0, 14.0, 16.0]
    (launch,) = recorded.launches
    assert (launch.name, launch.threads, launch.bytesRead, launch.bytesWritten) == (AXPY.name, 3, 12, 12)
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel(numpy.ones(3, dtype=numpy.float32), numpy.float32(2.0), y)


def test_an_elementwise_kernel_over_nothing_launches_nothing():
    """CuPy returns before launching when the loop is empty (``if 0 in shape``), as its reductions do."""
    kernel = cupy.ElementwiseKernel(AXPY.inParams, AXPY.outParams, AXPY.operation, name=AXPY.name)
    raw = cupy.ElementwiseKernel("raw T x", "raw T y", "y[i] = x[i]", name="test_simulated_raw_copy")
    empty = device(numpy.zeros((4, 0)))
    with trace.recording() as recorded:
        assert kernel(empty, numpy.float32(2.0), empty) is empty
        raw(device([1.0]), device([2.0]), size=0)
    assert recorded.launches == []


def test_an_elementwise_kernel_takes_size_only_when_every_array_is_raw_as_cupys():
    """CuPy's check_args: ``size`` with a non-raw array is a ValueError, and so is neither (the loop's size
    undecided); nothing runs."""
    kernel = cupy.ElementwiseKernel(AXPY.inParams, AXPY.outParams, AXPY.operation, name=AXPY.name)
    raw = cupy.ElementwiseKernel("raw T x", "raw T y", "y[i] = x[i]", name="test_simulated_raw_copy")
    x, y = device([1.0, 2.0, 3.0]), device([10.0, 10.0, 10.0])
    with trace.recording() as recorded:
        with pytest.raises(ValueError, match="Specified 'size' can be used only if all of the ndarray are 'raw'"):
            kernel(x, numpy.float32(2.0), y, size=2)
        with pytest.raises(ValueError, match="Loop size is undecided"):
            raw(x, y)
    assert y.get().tolist() == [10.0, 10.0, 10.0] and recorded.launches == []


def test_an_elementwise_kernel_refuses_arrays_of_another_type_than_declared_as_cupys():
    """CuPy's _decide_params_type: an array for a parameter of a fixed dtype must have that dtype, and an output
    must be an array (TypeError); the host text would read the array as the declared type."""
    kernel = cupy.ElementwiseKernel("float32 x, T a", "float32 y", "y = x * a", name="test_simulated_fixed")
    y = device([0.0, 0.0])
    with trace.recording() as recorded:
        with pytest.raises(TypeError, match="Type is mismatched"):
            kernel(device([1.0, 2.0], numpy.float64), device([3.0, 3.0]), y)
        with pytest.raises(TypeError, match="Type is mismatched"):
            kernel(device([1.0, 2.0]), device([3.0, 3.0]), device([0.0, 0.0], numpy.float64))
        with pytest.raises(TypeError, match="Output arguments must be cupy.ndarray"):
            kernel(device([1.0, 2.0]), device([3.0, 3.0]), 0.0)
    assert y.get().tolist() == [0.0, 0.0] and recorded.launches == []


def test_stream_event_and_device_waits_are_syncs():
    stream = cupy.cuda.Stream(non_blocking=True)
    with trace.recording() as recorded:
        with stream:
            assert cupy.cuda.get_current_stream() is stream
            event = stream.record()
        stream.wait_event(event)
        event.synchronize()
        stream.synchronize()
        cupy.cuda.Device(0).synchronize()
    assert [event.kind for event in recorded.syncs] == ["sync"] * 3
    assert cupy.cuda.get_current_stream() is not stream


def test_bincount_reads_its_length_from_the_device_as_cupy_does():
    labels = cupy.array(numpy.array([0, 2, 2], dtype=numpy.int32))
    with trace.recording() as recorded:
        counts = cupy.bincount(labels, minlength=4)
    assert counts.get().tolist() == [1, 0, 2, 0] and recorded.summary()["syncs"] == 1


def test_the_time_model_splits_a_step_at_its_syncs():
    gpu = gpumodel.GPUS["h100"]
    full = gpu.fullThreads
    recorded = trace.Trace()
    launch = trace.Launch("copy", full, int(gpu.bandwidth / 2), int(gpu.bandwidth / 2))  # one second of traffic
    recorded.events = [launch, trace.Transfer("sync", 0, "here"), launch]
    recorded.launches = [launch, launch]
    predicted = gpumodel.predict(recorded, gpu, hostPerLaunch=0.5)
    assert predicted["deviceSeconds"] == pytest.approx(2 * (1 + gpu.latency))
    assert predicted["seconds"] == pytest.approx(2 * (1 + gpu.latency))  # device-bound on both sides of the sync
    narrow = trace.Launch("plane", full // 100, int(gpu.bandwidth), 0)
    assert gpumodel.deviceSeconds(narrow, gpu) == pytest.approx(full / (full // 100) + gpu.latency)  # ~1% of HBM
    host = gpumodel.predict(trace.Trace(events=[trace.Launch("tiny", 1, 0, 0)] * 10), gpu, hostPerLaunch=1e-3)
    assert host["seconds"] == pytest.approx(10 * (1e-3 + gpumodel.CUPY_LAUNCH_SECONDS))  # host-bound


@onSimulated
def test_the_backend_is_the_simulated_device():
    assert backend.isGpu and backend.xp.module is cupy and backend.name == "simulated"
    array = backend.toDevice(numpy.arange(3, dtype=numpy.float32))
    assert backend.isDeviceArray(array) and not backend.isDeviceArray(numpy.ones(3))
    assert backend.toHost(array).tolist() == [0.0, 1.0, 2.0]


@onSimulated
def test_uploads_copy_from_pinned_memory_on_a_side_stream():
    host = [numpy.arange(12, dtype=numpy.float32).reshape(3, 4), numpy.arange(3, dtype=numpy.int32)]
    with trace.recording() as recorded:
        arrays = backend.startUpload(host).arrays()
    assert [event.pinned for event in recorded.hostToDevice] == [True, True]
    assert [event.what for event in recorded.syncs] == ["Event.synchronize"]
    for array, expected in zip(arrays, host):
        numpy.testing.assert_array_equal(backend.toHost(array), expected)


@onSimulated
def test_scatter_add_adds_repeated_indices_on_the_device():
    target = backend.xp.zeros(3, dtype=numpy.float32)
    indices = backend.toDevice(numpy.array([0, 2, 2], dtype=numpy.int32))
    backend.scatterAdd(target, indices, backend.toDevice(numpy.array([1.0, 2.0, 3.0], dtype=numpy.float32)))
    assert backend.toHost(target).tolist() == [1.0, 0.0, 5.0]


@onSimulated
def test_one_rank_takes_the_gpu_branch_of_the_transport_choice():
    pytest.importorskip("mpi4py")
    from minidl.distributed import NodeInfo

    info = NodeInfo()
    assert info.transport == "mpi (host staging)" and info.nccl is None
