"""A product of two matrices on the CPU split among minidl's threads (minidl.backend.hostblas.SplitProduct, through
products.matmul). Oracles: the float64 product with the gemm's error bound, the same product made whole on one
thread, NumPy's matmul where it makes the product, and the process's CPU time for the BLAS's own threads."""

import ctypes
import subprocess
import sys

import numpy
import pytest

from minidl import BackendError
from minidl.backend import hostblas, products
from minidl.backend.hostblas import SplitProduct
from tests.backend.test_host_batches import assertTapeReplaysProduct, planOf, pytestmark  # noqa: F401 (pytestmark: the same skips)

rng = numpy.random.default_rng(11)


@pytest.fixture(autouse=True)
def freshPlans(monkeypatch):
    """The products' plans made afresh, and none of few rows left to minidl's own kernel (SmallProduct, tested in
    test_small_products.py): every product here is split for OpenBLAS."""
    monkeypatch.setattr(products, "_hostPlans", {})
    monkeypatch.setattr(products, "SMALL_ROWS", (1, 0))


def draw(shape, dtype, transposed=False):
    """A matrix of ``shape``, read by columns (a transposed view) when ``transposed``."""
    if transposed:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


def assertWithinTheGemmBound(got, a, b, start=None):
    """|got - a b (+ start)| <= 2 K eps (|a| |b| + |start|), computed in float64: the error bound of a sum of K
    products rounded in got's precision, whatever the order of the sum."""
    exact = a.astype(numpy.float64) @ b.astype(numpy.float64)
    scale = numpy.abs(a).astype(numpy.float64) @ numpy.abs(b).astype(numpy.float64)
    if start is not None:
        exact, scale = exact + start, scale + numpy.abs(start)
    bound = 2 * (a.shape[-1] + 1) * numpy.finfo(got.dtype).eps * scale
    assert (numpy.abs(got - exact) <= bound).all()


SHAPES = [  # (rows, inner, columns): the split it takes on two threads or more
    (128, 256, 256),  # rows (the digits MLP's hidden layer)
    (32, 128, 512),  # columns (an LSTM's recurrent product)
    (129, 257, 33),  # rows, one range a row longer
    (1000, 3, 1000),  # rows, a short inner axis
    (2, 1024, 1024),  # columns, fewer rows than threads
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("transposedA, transposedB", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("rows, inner, cols", SHAPES)
def test_a_split_product_is_the_product_within_the_gemms_error_bound(rows, inner, cols, transposedA, transposedB,
                                                                     dtype):
    a, b = draw((rows, inner), dtype, transposedA), draw((inner, cols), dtype, transposedB)
    got = products.matmul(a, b)
    assert isinstance(planOf(a, b), SplitProduct)
    assert got.shape == (rows, cols) and got.dtype == dtype
    assertWithinTheGemmBound(got, a, b)
    numpy.testing.assert_array_equal(products.matmul(a, b), got)  # the same bits run after run
    out = numpy.full((rows, cols), numpy.nan, dtype)
    assert products.matmul(a, b, out=out) is out
    numpy.testing.assert_array_equal(out, got)
    start = draw((rows, cols), dtype)
    out = start.copy()
    products.matmul(a, b, out=out, accumulate=True)  # beta = 1: each thread adds its range
    assertWithinTheGemmBound(out, a, b, start)


def test_the_split_follows_the_shape_and_what_numpys_blas_multiplies_on_one_thread(monkeypatch):
    splits = []
    for rows, inner, cols in [*SHAPES, (128, 256, 10), (16, 16, 16)]:
        a, b = draw((rows, inner), numpy.float32), draw((inner, cols), numpy.float32)
        products.matmul(a, b)
        plan = planOf(a, b)
        splits.append(plan and ("rows" if plan.numbers[8] == 0 else "columns"))
    # 327,680 and 4,096 multiply-adds: NumPy's, which its OpenBLAS makes on one thread
    assert splits == ["rows", "columns", "rows", "rows", "columns", False, False]
    monkeypatch.setattr(products, "poolThreads", lambda: 1)
    a, b = draw((128, 256), numpy.float32), draw((256, 256), numpy.float32)
    products._hostPlans.clear()
    numpy.testing.assert_array_equal(products.matmul(a, b), numpy.matmul(a, b))
    assert planOf(a, b) is False  # one thread: nothing to share


@pytest.mark.parametrize("byRows", [True, False])
def test_a_split_reads_strided_rows_and_writes_into_a_wider_out(byRows):
    wideA, wideB = draw((130, 300), numpy.float32), draw((300, 70), numpy.float32)
    a, b = wideA[1:129, 5:261], wideB[5:261, 3:67]  # rows of stride 300 and 70: leading dimensions
    canvas = numpy.full((130, 80), -7.0, numpy.float32)
    out = canvas[1:129, 4:68]
    SplitProduct(numpy.float32, (128, 64, 256), (False, 300), (False, 70), 80, byRows, accumulate=False)(a, b, out)
    assertWithinTheGemmBound(out, a, b)
    untouched = numpy.ones(canvas.shape, bool)
    untouched[1:129, 4:68] = False
    assert (canvas[untouched] == -7.0).all()  # nothing written beside out's rows and columns


@pytest.mark.parametrize("what", ["float16", "empty", "strided columns", "out transposed", "mixed dtypes"])
def test_what_the_threads_cannot_read_stays_numpys(what):
    a, b, out = draw((128, 256), numpy.float32), draw((256, 256), numpy.float32), None
    if what == "float16":
        a, b = a.astype(numpy.float16), b.astype(numpy.float16)
    elif what == "empty":
        a, b = draw((128, 0), numpy.float32), draw((0, 256), numpy.float32)
    elif what == "strided columns":
        a = draw((128, 512), numpy.float32)[:, ::2]  # neither rows nor columns of stride 1
    elif what == "out transposed":
        out = numpy.empty((256, 128), numpy.float32).T
    if what == "mixed dtypes":
        with pytest.raises(BackendError, match="of one dtype"):
            products.matmul(a, b.astype(numpy.float64))
        return
    got = products.matmul(a, b, out=out)
    numpy.testing.assert_array_equal(got, numpy.matmul(a, b))
    assert planOf(a, b, out) is False


def test_a_batch_of_one_matrix_is_split_as_a_matrix():
    a, b = draw((1, 128, 256), numpy.float32), draw((256, 256), numpy.float32)
    got = products.matmul(a, b)
    assert isinstance(planOf(a, b), SplitProduct) and got.shape == (1, 128, 256)
    assertWithinTheGemmBound(got[0], a[0], b)


def test_a_tape_records_the_split_product_and_replays_it_with_the_same_bits():
    a, b = draw((128, 256), numpy.float32), draw((256, 256), numpy.float32)
    assertTapeReplaysProduct(a, b, "gemm_split", draw(a.shape, numpy.float32), products.matmul)


def test_the_blas_thread_count_is_put_back_after_every_split_product():
    localThreads = hostblas._symbol(hostblas._numpyOpenBlas()[0], ("openblas_set_num_threads_local",))
    setLocal = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(localThreads)
    before = setLocal(3)
    try:
        for _ in range(20):
            products.matmul(draw((128, 256), numpy.float32), draw((256, 256), numpy.float32))
            assert setLocal(3) == 3
    finally:
        setLocal(before)


BLAS_THREADS = """
import resource, sys, time, numpy
from minidl.backend import products
a, b = numpy.ones((512, 512), numpy.float32), numpy.ones((512, 512), numpy.float32)
multiply = numpy.matmul if sys.argv[1] == "numpy" else products.matmul
multiply(a, b)
time.sleep(0.5)  # OpenBLAS's threads spin from their start too: past that, only a product of theirs wakes them
for _ in range(3):
    multiply(a, b)
before = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.1)
after = resource.getrusage(resource.RUSAGE_SELF)
print(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
"""


def test_the_blas_threads_stay_asleep_after_minidls_products():
    spent = {}
    for who in ("numpy", "minidl"):
        result = subprocess.run([sys.executable, "-c", BLAS_THREADS, who], text=True, capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr
        spent[who] = float(result.stdout)
    # OpenBLAS's worker spins after NumPy's threaded product (about 0.1 s of a core); minidl's threads 0.5 ms
    assert spent["minidl"] < 0.015 and spent["numpy"] > 0.03, spent
