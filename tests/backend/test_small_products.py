"""Products of few rows made by minidl's own kernel on its threads (minidl.backend.hostblas.SmallProduct, through
products.matmul). Oracles: the float64 product with the gemm's error bound, the same call made again, a tape's
replay, and each value's fused multiply-adds in exact rationals."""

from fractions import Fraction

import numpy
import pytest

from minidl.backend import hostblas, products
from minidl.backend.hostblas import SmallProduct, SplitProduct
from tests.backend.test_host_batches import assertTapeReplaysProduct, planOf, pytestmark  # noqa: F401 (pytestmark: the same skips)
from tests.backend.test_split_products import assertWithinTheGemmBound, draw


@pytest.fixture(autouse=True)
def freshPlans(monkeypatch):
    """The products' plans made afresh, every product large enough to share (the mechanics on small matrices)."""
    monkeypatch.setattr(products, "_hostPlans", {})
    monkeypatch.setattr(hostblas, "SPLIT_FROM", 0)


SHAPES = [  # (rows, inner, columns)
    (32, 128, 512),  # an LSTM's recurrent product: whole blocks of 4 rows and 4 vectors of columns
    (32, 512, 128),  # its gradient's
    (7, 9, 100),  # 3 rows past the last block of 4; columns past the last whole vector
    (64, 33, 80),  # a block of fewer vectors than 4
    (4, 1, 64),  # one term
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("transposedA", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("rows, inner, cols", SHAPES)
def test_a_small_product_is_the_product_within_the_gemms_error_bound(rows, inner, cols, accumulate, transposedA,
                                                                     dtype):
    a, b = draw((rows, inner), dtype, transposedA), draw((inner, cols), dtype)
    start = draw((rows, cols), dtype)
    out = start.copy()
    products.matmul(a, b, out=out, accumulate=accumulate)
    assert isinstance(planOf(a, b, out, accumulate), SmallProduct)
    assertWithinTheGemmBound(out, a, b, start if accumulate else None)
    again = start.copy()
    products.matmul(a, b, out=again, accumulate=accumulate)
    numpy.testing.assert_array_equal(again, out)  # each value one sum in a fixed order


def test_a_small_product_reads_strided_rows_and_writes_into_a_wider_out():
    wideA, wideB = draw((40, 300), numpy.float32), draw((300, 150), numpy.float32)
    a, b = wideA[1:33, 5:261], wideB[5:261, 3:131]  # rows of stride 300 and 150: leading dimensions
    canvas = numpy.full((40, 140), -7.0, numpy.float32)
    out = canvas[2:34, 4:132]
    products.matmul(a, b, out=out)
    assert isinstance(planOf(a, b, out), SmallProduct)
    assertWithinTheGemmBound(out, a, b)
    untouched = numpy.ones(canvas.shape, bool)
    untouched[2:34, 4:132] = False
    assert (canvas[untouched] == -7.0).all()  # nothing written beside out's rows and columns


@pytest.mark.parametrize("rows, inner, cols, transposedB", [
    (32, 128, 512, True),  # B read by columns
    (65, 128, 512, False),  # more rows than SMALL_ROWS
    (2, 4096, 512, False),  # fewer rows than a block
    (64, 4096, 63, False),  # fewer columns than SMALL_COLUMNS_FROM
])
def test_other_products_are_split_for_the_blas(rows, inner, cols, transposedB):
    a, b = draw((rows, inner), numpy.float32), draw((inner, cols), numpy.float32, transposedB)
    got = products.matmul(a, b)
    assert isinstance(planOf(a, b), SplitProduct)
    assertWithinTheGemmBound(got, a, b)


def test_a_tape_records_the_small_product_and_replays_it_with_the_same_bits():
    a, b = draw((32, 128), numpy.float32), draw((128, 512), numpy.float32)
    assertTapeReplaysProduct(a, b, "gemm_small", draw(a.shape, numpy.float32), products.matmul)


def test_each_value_is_one_sum_of_fused_multiply_adds_in_order():
    """float64, 5 rows (a block of 4 and one), 13 columns (whole vectors and a tail): every value, the tail's too, is
    sum = fma(a[i, p], b[p, j], sum) from 0 over p in order, each step rounded once (exact rationals rounded to
    float64, the oracle)."""
    rows, inner, columns = 5, 7, 13
    a, b = draw((rows, inner), numpy.float64), draw((inner, columns), numpy.float64)
    out = numpy.empty((rows, columns))
    SmallProduct(numpy.float64, (rows, columns, inner), (False, inner), columns, columns, False)(a, b, out)
    want = numpy.zeros((rows, columns))
    for i in range(rows):
        for j in range(columns):
            total = 0.0
            for p in range(inner):
                total = float(Fraction(a[i, p]) * Fraction(b[p, j]) + Fraction(total))
            want[i, j] = total
    numpy.testing.assert_array_equal(out, want)
