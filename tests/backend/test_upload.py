"""Uploads: device copies equal to their host arrays with or without overlap, and batches that do not depend on it."""

import numpy
import pytest

from minidl import backend
from minidl.backend import isDeviceArray, startUpload, toHost
from minidl.train.batches import deviceBatches


@pytest.mark.parametrize("overlap", [True, False])
def test_an_upload_gives_copies_of_the_host_arrays(overlap):
    host = [numpy.arange(24, dtype=numpy.float32).reshape(4, 6), numpy.arange(4, dtype=numpy.int32)]
    upload = startUpload(host, overlap)
    arrays = upload.arrays()
    for device, array in zip(arrays, host):
        assert isDeviceArray(device) == backend.isGpu and device.dtype == array.dtype
        numpy.testing.assert_array_equal(toHost(device), array)
    host[0][:] = -1  # the device arrays are copies
    assert toHost(arrays[0])[0, 1] == 1 and upload.arrays() is arrays


@pytest.mark.skipif(not backend.isGpu, reason="the side-stream copy needs a GPU")
def test_a_side_stream_copy_waits_for_the_work_queued_before_it():
    """The target memory of an upload may be a block just freed by queued work: the copy must come after it."""
    xp = backend.xp
    results = []
    for _ in range(20):
        work = xp.ones(1 << 22, dtype=numpy.float32)
        total = (work * 2).sum()  # queued on the current stream
        del work
        upload = startUpload([numpy.full(1 << 22, 3.0, dtype=numpy.float32)])
        results.append((float(total), float(upload.arrays()[0].sum())))
    assert set(results) == {(2.0 * (1 << 22), 3.0 * (1 << 22))}


def test_batches_are_the_same_with_and_without_overlap():
    rng = numpy.random.default_rng(0)
    data, labels = rng.normal(size=(50, 3)).astype(numpy.float32), rng.integers(0, 4, 50).astype(numpy.int32)
    order = rng.permutation(50)
    runs = [[tuple(map(toHost, batch)) for batch in deviceBatches((data, labels), 8, 16, order, overlap=overlap)]
            for overlap in (True, False)]
    assert len(runs[0]) == 7
    for (a, b), (c, d) in zip(*runs):
        numpy.testing.assert_array_equal(a, c)
        numpy.testing.assert_array_equal(b, d)
    numpy.testing.assert_array_equal(numpy.concatenate([b for _, b in runs[0]]), labels[order])
