"""minidl.backend.products.matmul against a float64 oracle, on the CPU (NumPy) and on the simulated device (cuBLAS's
column-major strided batched product, from raw pointers): row-major operands, transposed views, slices of rows,
operands broadcast over the batch, batches whose strides do not fold into one, accumulation, float16/32/64; one
launch per product; bad input refused before anything changes. The simulated cuBLAS itself refuses a leading
dimension too small and a matrix that reaches past its array, as the tests below make sure."""

import numpy
import pytest

from minidl import BackendError, backend
from minidl.backend import allowTF32, toDevice, toHost
from minidl.backend.products import columnSums, cpuContiguous, cpuLaidOut, matmul

rng = numpy.random.default_rng(11)
onSimulated = pytest.mark.skipif(backend.name != "simulated", reason="the simulated device's cuBLAS and trace")


def launches(run):
    """The names of the launches ``run`` makes on the simulated device (an empty list on the CPU)."""
    if backend.name != "simulated":
        run()
        return []
    from minidl.backend.simulated import trace

    with trace.recording() as recorded:
        run()
    return [launch.name for launch in recorded.launches]


def values(shape, dtype=numpy.float32):
    return rng.standard_normal(shape).astype(dtype)


# (a's host array, b's, how each is seen: a function of the device array giving the operand, expected launches)
CASES = {
    "matrices": ((4, 5), (5, 3), lambda x: x, lambda x: x, 1),
    "a batch": ((6, 4, 5), (6, 5, 3), lambda x: x, lambda x: x, 1),
    "weights broadcast over a batch": ((4, 5), (6, 5, 3), lambda x: x, lambda x: x, 1),
    "weights of one group broadcast over images": ((1, 4, 5), (6, 1, 5, 3), lambda x: x, lambda x: x, 1),
    "a transposed view (Wᵀ)": ((5, 4), (6, 5, 3), lambda x: x.T, lambda x: x, 1),
    "b transposed per image (colᵀ)": ((6, 4, 3), (6, 7, 3), lambda x: x, lambda x: x.transpose(0, 2, 1), 1),
    "rows sliced from a taller b": ((4, 5), (6, 7, 3), lambda x: x, lambda x: x[:, :5], 1),
    "columns sliced from a wider a (its leading dimension)": ((6, 4, 8), (5, 3), lambda x: x[..., :5], lambda x: x, 1),
    "grouped weights over images: one call per group": ((3, 4, 5), (6, 3, 5, 2), lambda x: x, lambda x: x, 3),
    "neither rows nor columns of stride 1: copied": ((4, 10), (5, 3), lambda x: x[:, ::2], lambda x: x, 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64, numpy.float16])
def test_a_product_matches_float64_in_one_launch(case, dtype):
    aShape, bShape, seeA, seeB, count = CASES[case]
    a, b = values(aShape, dtype), values(bShape, dtype)
    expected = numpy.matmul(seeA(a.astype(numpy.float64)), seeB(b.astype(numpy.float64)))
    got = []
    names = launches(lambda: got.append(matmul(seeA(toDevice(a)), seeB(toDevice(b)))))
    assert got[0].dtype == dtype and got[0].shape == expected.shape
    tolerance = 3e-3 if dtype == numpy.float16 else 1e-5
    numpy.testing.assert_allclose(toHost(got[0]).astype(numpy.float64), expected, rtol=tolerance, atol=tolerance)
    if backend.name == "simulated":
        assert names.count("gemmStridedBatched") == (count if "copied" not in case else 1)
        assert len(names) == count


@onSimulated
def test_a_geometrys_later_products_take_its_plan_and_see_new_values(monkeypatch):
    """The first product of a geometry (shapes, strides, dtypes, accumulate, TF32) works out its cuBLAS calls
    (ProductPlan); later ones make the same calls on their own arrays, without the layouts worked out again; one
    whose operand had to be copied first is worked out at every product."""
    from minidl.backend import products

    planned = ["matrices", "a transposed view (Wᵀ)", "grouped weights over images: one call per group",
               "columns sliced from a wider a (its leading dimension)"]
    copied = "neither rows nor columns of stride 1: copied"
    real, laidOut = products._layout, []
    monkeypatch.setattr(products, "_layout", lambda array: laidOut.append(array.shape) or real(array))
    monkeypatch.setattr(products, "_plans", {})  # none from the tests before
    for round in range(3):
        for case in [*planned, copied]:
            aShape, bShape, seeA, seeB, count = CASES[case]
            a, b = toDevice(values(aShape)), toDevice(values(bShape))
            got = []
            names = launches(lambda a=a, b=b, seeA=seeA, seeB=seeB, got=got: got.append(matmul(seeA(a), seeB(b))))
            expected = numpy.matmul(seeA(toHost(a).astype(numpy.float64)), seeB(toHost(b).astype(numpy.float64)))
            numpy.testing.assert_allclose(toHost(got[0]), expected, rtol=1e-5, atol=1e-5)
            assert len(names) == count
        # each planned product lays out a and b at its first round only; the copied one lays out a, its copy and b
        assert len(laidOut) == 2 * len(planned) + 3 * (round + 1)
    out = toDevice(values((4, 3)))
    before = toHost(out).astype(numpy.float64)
    a, b = values((4, 5)), values((5, 3))
    matmul(toDevice(a), toDevice(b), out=out, accumulate=True)  # accumulate: a geometry of its own
    numpy.testing.assert_allclose(toHost(out), before + a.astype(numpy.float64) @ b, rtol=1e-5, atol=1e-5)


def test_a_transposed_operand_is_laid_out_on_the_cpu_and_read_as_it_is_on_a_gpu():
    weights = toDevice(numpy.arange(12, dtype=numpy.float32).reshape(3, 4))
    operand = cpuContiguous(weights.T)
    assert toHost(operand).tolist() == toHost(weights).T.tolist()
    if backend.isGpu:
        assert operand.data.ptr == weights.data.ptr and not operand.flags.c_contiguous  # the view itself
    else:
        assert operand.flags.c_contiguous and not numpy.shares_memory(operand, weights)


def test_a_product_written_into_an_out_laid_out_for_its_reader_is_read_as_a_view_on_the_cpu():
    """Attention's ∂q, ∂k, ∂v (3, batch, heads, steps, size), read as the rows of ∂qkv (steps, batch, 3, heads,
    size): on the CPU the product writes those rows in place; on a GPU its out is contiguous (one launch)."""
    a, b = values((3, 2, 4, 5, 6)), values((3, 2, 4, 6, 7))
    out = cpuLaidOut((3, 2, 4, 5, 7), (3, 1, 0, 2, 4), numpy.float32)
    assert out.shape == (3, 2, 4, 5, 7) and out.dtype == numpy.float32
    names = launches(lambda: matmul(toDevice(a), toDevice(b), out=out))
    read = out.transpose(3, 1, 0, 2, 4)
    expected = numpy.matmul(a.astype(numpy.float64), b).transpose(3, 1, 0, 2, 4)
    numpy.testing.assert_allclose(toHost(read), expected, rtol=1e-5, atol=1e-5)
    if backend.isGpu:
        assert out.flags.c_contiguous and names == ["gemmStridedBatched"]
    else:
        assert read.flags.c_contiguous and read.reshape(-1, 3 * 4 * 7).base is out.base


def test_accumulate_adds_into_out_in_the_same_launch():
    a, b, out = values((4, 5)), values((6, 5, 3)), values((6, 4, 3))
    target = toDevice(out)
    names = launches(lambda: matmul(toDevice(a), toDevice(b), out=target, accumulate=True))
    numpy.testing.assert_allclose(toHost(target), out.astype(numpy.float64) + a.astype(numpy.float64) @ b,
                                  rtol=1e-5, atol=1e-5)
    assert names in ([], ["gemmStridedBatched"])


def test_out_receives_the_product_and_nan_in_it_is_not_read():
    a, b = values((2, 3)), values((3, 4))
    wide = toDevice(numpy.full((2, 7), numpy.nan, dtype=numpy.float32))
    target = wide[:, 1:5]  # rows of stride 7: the leading dimension of out
    assert matmul(toDevice(a), toDevice(b), out=target) is target
    numpy.testing.assert_allclose(toHost(target), a.astype(numpy.float64) @ b, rtol=1e-5, atol=1e-6)
    assert numpy.isnan(toHost(wide)[:, [0, 5, 6]]).all()


def test_an_empty_inner_axis_gives_zeros_or_leaves_out():
    a, b = numpy.zeros((3, 0), numpy.float32), numpy.zeros((0, 2), numpy.float32)
    numpy.testing.assert_array_equal(toHost(matmul(toDevice(a), toDevice(b))), numpy.zeros((3, 2)))
    out = toDevice(numpy.ones((3, 2), numpy.float32))
    matmul(toDevice(a), toDevice(b), out=out, accumulate=True)
    numpy.testing.assert_array_equal(toHost(out), numpy.ones((3, 2)))


@pytest.mark.parametrize("call, message", [
    (lambda a, b, out: matmul(a, b[:4]), r"\(\.\.\., M, K\) and \(\.\.\., K, N\)"),
    (lambda a, b, out: matmul(a, b.astype(numpy.float64)), "of one dtype"),
    (lambda a, b, out: matmul(a, b, accumulate=True), "pass out"),
    (lambda a, b, out: matmul(a, b, out=out[:, :2], accumulate=True), r"out must be \(4, 3\) float32"),
])
def test_bad_input_is_refused_before_anything_changes(call, message):
    a, b, out = toDevice(values((4, 5))), toDevice(values((5, 3))), toDevice(values((4, 3)))
    before = toHost(out)
    with pytest.raises(BackendError, match=message):
        call(a, b, out)
    numpy.testing.assert_array_equal(toHost(out), before)


@pytest.mark.skipif(not backend.isGpu, reason="a device's products: the simulated device (CI's second run) or a GPU")
def test_a_host_array_in_a_device_product_is_refused_before_anything_changes():
    """On a device every operand and out must be a device array: a NumPy one failed inside the cuBLAS call with an
    AttributeError ('memoryview' object has no attribute 'ptr'), also where the geometry's plan was kept."""
    a, b, out = toDevice(values((4, 5))), toDevice(values((5, 3))), toDevice(values((4, 3)))
    matmul(a, b, out=out)  # the geometry's plan, which a host array of the same shape and strides would find
    before = toHost(out)
    for args, keywords in (((a, toHost(b)), {"out": out}), ((toHost(a), b), {"out": out}), ((a, toHost(b)), {}),
                           ((a, b), {"out": numpy.zeros((4, 3), numpy.float32)})):
        with pytest.raises(BackendError, match="matmul on a GPU takes device arrays"):
            matmul(*args, **keywords)
    numpy.testing.assert_array_equal(toHost(out), before)


@pytest.mark.skipif(backend.isGpu, reason="host arrays: a device array is always writable")
@pytest.mark.parametrize("shapes", [((8, 8), (8, 8)), ((256, 256), (256, 256)), ((32, 64, 64), (32, 64, 64))])
def test_a_read_only_out_is_refused_before_anything_changes(shapes):
    """NumPy's matmul refuses a read-only out (ValueError); the products made on minidl's threads (a product split
    among them, a batch shared) wrote into it."""
    (shapeA, shapeB), rng = shapes, numpy.random.default_rng(5)
    a, b = rng.standard_normal(shapeA).astype(numpy.float32), rng.standard_normal(shapeB).astype(numpy.float32)
    out = numpy.zeros(shapeA[:-1] + shapeB[-1:], numpy.float32)
    out.flags.writeable = False
    for accumulate in (False, True):
        with pytest.raises(BackendError, match="matmul's out is read-only"):
            matmul(a, b, out=out, accumulate=accumulate)
    assert not out.any()


@pytest.mark.parametrize("size", [8, 256])  # NumPy's matmul; the product split among minidl's threads
@pytest.mark.parametrize("accumulate", [False, True])
def test_an_out_overlapping_an_operand_is_refused_before_anything_changes(size, accumulate):
    """A gemm writes out while it reads the operands (cuBLAS, and the CPU's split product: out = a @ b into a's own
    memory gave errors of 70 at 256x256), so out may not share memory with a or b; out in the other half of a's
    buffer is no overlap."""
    rng = numpy.random.default_rng(3)
    square = rng.standard_normal((size, size)).astype(numpy.float32)
    buffer = toDevice(numpy.zeros(2 * size * size, numpy.float32))
    buffer[: size * size] = toDevice(square.reshape(-1))
    a, b = buffer[: size * size].reshape(size, size), toDevice(square[::-1].copy())
    shifted = buffer[size * size // 2: size * size // 2 + size * size].reshape(size, size)  # over a's second half
    for out in (a, b, a.T, shifted):
        before = toHost(out)
        with pytest.raises(BackendError, match="out must not share memory with a or b"):
            matmul(a, b, out=out, accumulate=accumulate)
        numpy.testing.assert_array_equal(toHost(out), before)
    apart = buffer[size * size:].reshape(size, size)
    matmul(a, b, out=apart, accumulate=accumulate)
    expected = square.astype(numpy.float64) @ square[::-1].astype(numpy.float64)
    numpy.testing.assert_allclose(toHost(apart), expected, rtol=1e-4, atol=1e-3 * size)


@onSimulated
def test_products_run_in_tf32_only_when_allowed():
    from minidl.backend.simulated import trace

    a, b = toDevice(values((8, 8))), toDevice(values((8, 8)))
    try:
        for allowed, math in ((False, "fp32"), (True, "tf32")):
            allowTF32(allowed)
            with trace.recording() as recorded:
                matmul(a, b)
                matmul(a.astype(numpy.float16), b.astype(numpy.float16))
            assert [launch.math for launch in recorded.products] == [math, "fp16"]
    finally:
        allowTF32(False)


@onSimulated
def test_tf32_rounds_each_input_to_ten_mantissa_bits():
    a = toDevice(numpy.array([[1 + 2.0 ** -12]], dtype=numpy.float32))
    one = toDevice(numpy.ones((1, 1), dtype=numpy.float32))
    try:
        allowTF32(True)
        assert toHost(matmul(a, one))[0, 0] == 1.0
    finally:
        allowTF32(False)
    assert toHost(matmul(a, one))[0, 0] == numpy.float32(1 + 2.0 ** -12)


@onSimulated
def test_the_simulated_cublas_refuses_what_cublas_would_misread():
    from minidl.backend.simulated import cublas

    a, c = toDevice(values((4, 4))), toDevice(values((4, 4)))
    one, zero = numpy.ones((), numpy.float32), numpy.zeros((), numpy.float32)

    def gemm(lda=4, stride=0, count=1):
        cublas.gemmStridedBatchedEx(cublas.HANDLE, 0, 0, 4, 4, 4, one.ctypes.data, a.data.ptr, 0, lda, stride,
                                    a.data.ptr, 0, 4, 0, zero.ctypes.data, c.data.ptr, 0, 4, 0, count,
                                    cublas.CUBLAS_COMPUTE_32F, cublas.CUBLAS_GEMM_DEFAULT)

    gemm()
    with pytest.raises(cublas.CUBLASError, match="leading dimension 3 < max"):
        gemm(lda=3)
    with pytest.raises(ValueError, match="reaches past the device array"):
        gemm(lda=5)
    with pytest.raises(ValueError, match="reaches past the device array"):
        gemm(stride=16, count=2)
    host = numpy.zeros((4, 4), numpy.float32)  # memory that is no device array
    with pytest.raises(ValueError, match="reaches past the device array"):
        cublas.gemmStridedBatchedEx(cublas.HANDLE, 0, 0, 4, 4, 4, one.ctypes.data, host.ctypes.data, 0, 4, 0,
                                    a.data.ptr, 0, 4, 0, zero.ctypes.data, c.data.ptr, 0, 4, 0, 1,
                                    cublas.CUBLAS_COMPUTE_32F, cublas.CUBLAS_GEMM_DEFAULT)
    with pytest.raises(cublas.CUBLASError, match="CUBLAS_STATUS_NOT_SUPPORTED"):
        cublas.gemmStridedBatchedEx(cublas.HANDLE, 0, 0, 4, 4, 4, one.ctypes.data, a.data.ptr, 2, 4, 0,
                                    a.data.ptr, 2, 4, 0, zero.ctypes.data, c.data.ptr, 2, 4, 0, 1,
                                    cublas.CUBLAS_COMPUTE_32F_FAST_TF32, cublas.CUBLAS_GEMM_DEFAULT)


@onSimulated
def test_cupys_own_batched_matmul_is_counted_as_cupy_makes_it():
    """CuPy 14's matmul of more than two axes: a copy of an operand not C-contiguous, pointer arrays where one is
    broadcast (a launch per batch axis for a, b and the result), float16 cast to float32 and back."""
    from minidl.backend import xp

    w, col = toDevice(values((1, 4, 5))), toDevice(values((6, 1, 5, 3)))
    assert launches(lambda: xp.matmul(w, col)) == ["cupy_mat_ptrs"] * 6 + ["matmul"]
    assert launches(lambda: xp.matmul(col.transpose(0, 1, 3, 2), col)) == ["copy", "matmul"]
    half = col.astype(numpy.float16)
    assert launches(lambda: xp.matmul(half.transpose(0, 1, 3, 2), half)) == ["copy", "copy", "matmul", "copy"]
    assert launches(lambda: xp.matmul(w[0].T, w[0])) == ["matmul"]  # two axes: cuBLAS reads either order


@pytest.mark.parametrize("shape", [(1, 3), (7, 5), (0, 4), (2048, 384), (3000, 17)])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_column_sums_are_the_sums_over_the_rows(shape, dtype):
    # small ones by NumPy's matmul, (2048, 384) and (3000, 17) split among minidl's threads, on the CPU
    rows = numpy.random.default_rng(3).standard_normal(shape).astype(dtype)
    got = toHost(columnSums(toDevice(rows)))
    assert got.shape == (shape[1],) and got.dtype == dtype
    tolerance = 1e-5 * max(1, shape[0]) ** 0.5 if dtype == numpy.float32 else 1e-12 * max(1, shape[0])
    numpy.testing.assert_allclose(got, rows.astype(numpy.float64).sum(axis=0), rtol=0, atol=tolerance)


def test_column_sums_of_half_floats_are_numpys():
    rows = numpy.random.default_rng(4).standard_normal((300, 8)).astype(numpy.float16)
    got = toHost(columnSums(toDevice(rows)))
    assert got.dtype == numpy.float16
    numpy.testing.assert_array_equal(got, toHost(toDevice(rows).sum(axis=0)))
