"""Products over a batch on the CPU shared among minidl's threads (minidl.backend.hostblas, products.matmul), and
products whose B is made image by image by a kernel (a producer: minidl.nn.columnproducts). Oracles: NumPy's matmul,
whose per-matrix gemm is the one each thread calls (so the bits are the same), and im2col then NumPy's matmul."""

import ctypes

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import BackendError
from minidl.backend import hostblas, hostkernel, isGpu, products, xp
from minidl.backend.tape import Tape
from minidl.nn import Conv2D, conv2d
from minidl.nn.columnproducts import columnProducts, columnsImageByImage
from minidl.nn.im2col import Window, im2col
from minidl.testing import arrays, checkGradients

pytestmark = [  # also the split products' (test_split_products.py)
    pytest.mark.skipif(isGpu, reason="the CPU's products"),
    pytest.mark.skipif(hostkernel.poolThreads() < 2, reason="one thread (OMP_NUM_THREADS=1): nothing to share"),
    pytest.mark.skipif(not hostblas.gemms(), reason=f"products run as {hostblas.hostBlas()} here: NumPy's BLAS is "
                                                     "not its wheels' OpenBLAS, or no compiler"),
]

rng = numpy.random.default_rng(7)


@pytest.fixture(autouse=True)
def everyBatch(monkeypatch):
    """Every batch large enough to share (the mechanics on small matrices; ``BATCH_FROM`` has its own test), with
    the products' plans made afresh; Conv2D by im2col's products, not by its direct convolutions of stride 1
    (``minidl.nn.directconv``, tested in tests/nn/test_directconv.py)."""
    monkeypatch.setattr(hostblas, "BATCH_FROM", 0)
    monkeypatch.setattr(conv2d, "directly", lambda *args: False)
    monkeypatch.setattr(products, "_hostPlans", {})


def draw(shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def planOf(a, b, out=None, accumulate=False):
    return products._hostPlans[products._geometry(a, b, out, accumulate)]


CASES = [  # (a's shape, b's shape, b read transposed)
    ((1, 16, 144), (32, 1, 144, 1024), False),  # a convolution's weights broadcast over its images
    ((32, 1, 16, 1024), (32, 1, 144, 1024), True),  # ∂W's products per image, col read by columns
    ((6, 3, 4), (6, 4, 5), False),  # small matrices (OpenBLAS's own batch call crashed on these)
    ((4, 3), (8, 3, 2), False),  # a matrix of two axes broadcast
    ((2, 4, 3, 5), (2, 4, 5, 2), False),  # two batch axes folding into one stride
    ((8, 2, 3), (1, 3, 4), False),  # a batch axis of one broadcast
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shapeA, shapeB, transposed", CASES)
def test_a_batch_on_the_threads_gives_numpys_bits(shapeA, shapeB, transposed, dtype):
    a = draw(shapeA, dtype)
    b = draw(shapeB, dtype)
    b = b.swapaxes(-1, -2) if transposed else b
    expected = numpy.matmul(a, b)
    got = products.matmul(a, b)
    assert isinstance(planOf(a, b), hostblas.StridedBatch)
    assert got.dtype == dtype and got.shape == expected.shape
    numpy.testing.assert_array_equal(got, expected)
    out = numpy.full_like(expected, numpy.nan)
    assert products.matmul(a, b, out=out) is out
    numpy.testing.assert_array_equal(out, expected)
    start = draw(expected.shape, dtype)
    out = start.copy()
    products.matmul(a, b, out=out, accumulate=True)  # beta = 1: the product added by the gemm itself
    numpy.testing.assert_allclose(out, start + expected, rtol=1e-5 if dtype == numpy.float32 else 1e-12, atol=1e-5)


def test_a_batch_the_threads_would_share_unevenly_stays_numpys():
    threads = hostkernel.poolThreads()
    a, b = draw((threads + 1, 4, 5), numpy.float32), draw((threads + 1, 5, 6), numpy.float32)
    numpy.testing.assert_array_equal(products.matmul(a, b), numpy.matmul(a, b))
    assert planOf(a, b) is False  # 3 products on 2 threads would take 2 products' time: NumPy's splits each instead
    a, b = draw((4 * threads + 1, 4, 5), numpy.float32), draw((4 * threads + 1, 5, 6), numpy.float32)
    numpy.testing.assert_array_equal(products.matmul(a, b), numpy.matmul(a, b))
    assert isinstance(planOf(a, b), hostblas.StridedBatch)  # 5 and 4 on 2 threads: close enough


def test_a_batch_too_small_to_wake_the_threads_for_stays_numpys(monkeypatch):
    monkeypatch.setattr(hostblas, "BATCH_FROM", 2 ** 20)
    a, b = draw((1, 8, 9), numpy.float32), draw((32, 9, 64), numpy.float32)  # 147,456 multiply-adds
    numpy.testing.assert_array_equal(products.matmul(a, b), numpy.matmul(a, b))
    assert planOf(a, b) is False
    a, b = draw((1, 16, 144), numpy.float32), draw((32, 144, 1024), numpy.float32)  # 75 million
    products.matmul(a, b)
    assert isinstance(planOf(a, b), hostblas.StridedBatch)
    data, window = draw((32, 1, 8, 8), numpy.float32), Window(3, 1, 1)
    assert not columnsImageByImage(numpy.float32, 32 * 8 * 9 * 64)  # the digits CNN's first convolution
    assert columnProducts(draw((8, 9), numpy.float32), data, window) is None
    assert columnsImageByImage(numpy.float32, 2 ** 20)


def test_with_one_thread_a_plain_batch_stays_numpys(monkeypatch):
    monkeypatch.setattr(products, "poolThreads", lambda: 1)
    a, b = draw((8, 4, 5), numpy.float64), draw((8, 5, 6), numpy.float64)
    numpy.testing.assert_array_equal(products.matmul(a, b), numpy.matmul(a, b))
    assert planOf(a, b) is False  # nothing to share; column products still run (their gain is the cache's)


@pytest.mark.parametrize("what", ["float16", "strided rows", "out transposed", "batch axes that fold in neither "
                                                                             "one stride nor two"])
def test_what_the_threads_cannot_read_stays_numpys(what):
    a, b = draw((4, 3, 5), numpy.float32), draw((4, 5, 6), numpy.float32)
    out = None
    if what == "float16":
        a, b = a.astype(numpy.float16), b.astype(numpy.float16)
    elif what == "strided rows":
        a = draw((4, 3, 10), numpy.float32)[:, :, ::2]  # neither rows nor columns of stride 1
    elif what == "out transposed":
        out = numpy.empty((4, 6, 3), numpy.float32).swapaxes(1, 2)
    else:  # b's batch axes in reverse order: no two of them fold into one stride, whatever the split
        a = draw((2, 3, 4, 3, 5), numpy.float32)
        b = draw((4, 3, 2, 5, 6), numpy.float32).transpose(2, 1, 0, 3, 4)
    got = products.matmul(a, b, out=out)
    numpy.testing.assert_array_equal(got, numpy.matmul(a, b))
    assert planOf(a, b, out) is False


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_a_batch_whose_axes_fold_into_two_strides_is_walked_by_two(dtype):
    # attention's ∂q, ∂k, ∂v written into the rows of ∂qkv, (steps, batch, 3, heads, size) in memory: the heads'
    # stride folds, the images' (3 heads further) does not
    batch, heads, steps, size = 4, 3, 6, 5
    scores, keys = draw((batch, heads, steps, steps), dtype), draw((batch, heads, steps, size), dtype)
    rows = numpy.full((steps, batch, 3, heads, size), numpy.nan, dtype)
    out = rows.transpose(2, 1, 3, 0, 4)[0]  # (batch, heads, steps, size), strides (3 heads size, size, ...)
    products.matmul(scores, keys, out=out)
    plan = planOf(scores, keys, out)
    assert isinstance(plan, hostblas.StridedBatch)
    assert list(plan.numbers)[11:] == [batch * heads, heads, heads * steps * steps, heads * steps * size,
                                       3 * heads * size]  # count, inner, then the outer strides of a, b and out
    numpy.testing.assert_array_equal(out, numpy.matmul(scores, keys))
    assert numpy.isnan(rows[:, :, 1:]).all()  # ∂k's and ∂v's rows untouched


def test_the_blas_thread_count_is_put_back_after_every_batch():
    localThreads = hostblas._symbol(hostblas._numpyOpenBlas()[0], ("openblas_set_num_threads_local",))
    setLocal = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(localThreads)
    before = setLocal(3)  # the batch sets 1 on every thread of the loop and puts back what was, once all are done
    try:
        for _ in range(20):  # a worker putting back its own raced the caller: 1 was left now and then
            products.matmul(draw((1, 16, 144), numpy.float32), draw((32, 1, 144, 1024), numpy.float32))
            assert setLocal(3) == 3
    finally:
        setLocal(before)


def assertTapeReplaysProduct(a, b, name, fresh, reference):
    """A tape records ``products.matmul(a, b)`` as the one call ``name`` and, replayed on ``fresh``, gives the bits of
    ``reference(fresh, b)``."""
    tape = Tape()
    with tape.recording(xp):
        result = products.matmul(tape.input(a), b)
    assert [getattr(call[0], "__name__", None) for call in tape.calls] == [name]
    tape.replay(fresh)
    numpy.testing.assert_array_equal(result, reference(fresh, b))


def test_a_tape_records_the_batch_and_replays_it_on_new_data():
    a, b = draw((8, 3, 4), numpy.float32), draw((8, 4, 5), numpy.float32)
    assertTapeReplaysProduct(a, b, "gemm_batch", draw(a.shape, numpy.float32), numpy.matmul)


def wholeColumns(data, window):
    """col of every image as (N, K, P), made whole by im2col: the oracle's columns."""
    col = im2col(data, window)
    return col.reshape(data.shape[0], -1, col.shape[-2] * col.shape[-1])


WINDOWS = [  # (data's shape, window's size, stride, pad, dilation)
    ((4, 16, 12, 12), 3, 1, 1, 1),  # "same": im2col's flat-plane kernel
    ((3, 5, 11, 9), (3, 2), (2, 1), (0, 1), 1),  # strided, rectangular: the kernel by rows
    ((2, 3, 10, 10), 3, 1, 2, 2),  # dilated, padded beyond the window
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape, size, stride, pad, dilation", WINDOWS)
def test_column_products_give_the_bits_of_whole_columns(shape, size, stride, pad, dilation, dtype):
    window = Window(size, stride, pad, dilation)
    data = draw(shape, dtype)
    col = wholeColumns(data, window)
    weights = draw((7, col.shape[1]), dtype)
    assert columnsImageByImage(dtype, 2 ** 30)
    numpy.testing.assert_array_equal(columnProducts(weights, data, window), numpy.matmul(weights, col))
    grad = draw((shape[0], 7, col.shape[2]), dtype)
    numpy.testing.assert_array_equal(columnProducts(grad, data, window, transposed=True),
                                     numpy.matmul(col, grad.transpose(0, 2, 1)))


@settings(max_examples=20, deadline=None)
@given(data=st.data(), transposed=st.booleans(), dtype=st.sampled_from([numpy.float32, numpy.float64]))
def test_column_products_carry_nan_and_infinities_where_whole_columns_do(data, transposed, dtype):
    window = Window(3, 1, 1)
    images = data.draw(arrays(dtype, (3, 2, 5, 5)))  # NaN, ±inf, -0.0 or subnormals at drawn places
    col = wholeColumns(images, window)
    left = data.draw(arrays(dtype, (3, 4, col.shape[2]) if transposed else (4, col.shape[1])))
    expected = numpy.matmul(col, left.transpose(0, 2, 1)) if transposed else numpy.matmul(left, col)
    got = columnProducts(left, images, window, transposed=transposed)
    numpy.testing.assert_array_equal(got, expected)  # the same gemm on the same values: NaN where NaN, the same ±inf


@pytest.mark.parametrize("maps, side, size, pad, stride", [(3, 7, 3, 1, 1), (2, 14, 3, 1, 2)])  # outputs 7x7
def test_conv2d_image_by_image_passes_a_float64_gradient_check(maps, side, size, pad, stride):
    conv = Conv2D(maps, 4, size, stride=stride, pad=pad, dtype=numpy.float64)
    images = draw((3, maps, side, side), numpy.float64)
    conv(images)
    assert conv.col is None  # the products of ∂x and ∂W are image by image too
    checkGradients(conv, images)


def test_column_products_refuse_a_left_of_the_wrong_shape_and_leave_what_they_cannot_do():
    window = Window(3, 1, 1)
    data = draw((4, 2, 6, 6), numpy.float32)
    with pytest.raises(BackendError, match=r"left must be \(5, 18\)"):
        columnProducts(draw((5, 17), numpy.float32), data, window)
    with pytest.raises(BackendError, match=r"left must be \(4, 5, 36\)"):
        columnProducts(draw((4, 5, 35), numpy.float32), data, window, transposed=True)
    assert columnProducts(draw((5, 18), numpy.float16), data.astype(numpy.float16), window) is None
    assert columnProducts(draw((5, 18), numpy.float32), data[:1], window) is None  # one image: whole col


def test_column_products_stay_off_where_the_kernels_run_numpys_references(monkeypatch):
    monkeypatch.setattr(hostkernel, "cpuKernels", lambda: "numpy")
    assert not columnsImageByImage(numpy.float32, 2 ** 30)
    window = Window(3, 1, 1)
    assert columnProducts(draw((5, 18), numpy.float32), draw((4, 2, 6, 6), numpy.float32), window) is None


def test_a_numpy_that_names_another_blas_or_none_leaves_the_products_numpys(monkeypatch):
    accelerate = {"Build Dependencies": {"blas": {"name": "accelerate"}}}  # macOS wheels
    monkeypatch.setattr(numpy, "show_config", lambda mode=None: accelerate)
    assert hostblas._numpyOpenBlas() is None

    def printsOnly():  # NumPy before 1.25: show_config() takes no mode (a TypeError) and prints
        print("blas: openblas")

    monkeypatch.setattr(numpy, "show_config", printsOnly)
    assert hostblas._numpyOpenBlas() is None


@pytest.mark.parametrize("maps, side, size, pad", [(16, 32, 3, 1), (8, 12, 5, 1)])  # a "same" im2col; by rows
def test_conv2d_image_by_image_gives_the_results_of_whole_columns(maps, side, size, pad, monkeypatch):
    data = draw((4, maps, side, side), numpy.float32)
    weights = draw((12, maps, size, size), numpy.float32)
    outSide = side + 2 * pad - size + 1
    gradOut = draw((4, 12, outSide, outSide), numpy.float32)
    results = []
    for imageByImage in (True, False):
        if not imageByImage:  # the oracle: col made whole, by im2col then the products
            monkeypatch.setattr(conv2d, "columnProducts", lambda *args, **kwargs: None)
        conv = Conv2D(maps, 12, size, pad=pad)
        conv.W[...] = weights
        out = conv(data).copy()
        assert (conv.col is None) == imageByImage  # never stored whole
        gradIn = conv.backward(gradOut).copy()
        results.append((out, gradIn, conv.vars["W"].grad.copy(), conv.vars["b"].grad.copy()))
    (out, gradIn, gradW, gradB), (wholeOut, wholeGradIn, wholeGradW, wholeGradB) = results
    numpy.testing.assert_array_equal(out, wholeOut)  # the same products per image: the same bits
    numpy.testing.assert_array_equal(gradIn, wholeGradIn)
    numpy.testing.assert_allclose(gradW, wholeGradW, rtol=1e-5, atol=1e-3)  # ∂Wᵀ per image: the gemm may block
    numpy.testing.assert_array_equal(gradB, wholeGradB)  # its sums otherwise


def test_conv2d_whose_backward_cannot_gather_image_by_image_makes_col_whole(monkeypatch):
    data, gradOut = draw((4, 6, 16, 16), numpy.float32), draw((4, 8, 16, 16), numpy.float32)
    conv = Conv2D(6, 8, 3, pad=1)
    conv(data)
    assert conv.col is None
    before = conv.vars["W"].grad.copy()
    conv.backward(gradOut)
    imageByImage = conv.vars["W"].grad.copy()
    conv.vars["W"].grad[...] = before  # then the same pass, its backward unable to gather image by image
    conv(data)
    monkeypatch.setattr(conv2d, "columnProducts", lambda *args, **kwargs: None)  # MINIDL_CPU_KERNELS changed, say
    conv.backward(gradOut)
    numpy.testing.assert_allclose(conv.vars["W"].grad, imageByImage, rtol=1e-5, atol=1e-4)
