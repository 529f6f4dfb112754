"""A Window works out its output shape and im2col's and col2im's arguments once per input shape and remembers them
(Window.remembered): answers stay right across more shapes than it remembers, and a window that does not fit
raises every time. Oracles: the output-size formula, NumPy slicing of a padded image."""

import numpy
import pytest

from minidl import ModuleError, backend
from minidl.nn.im2col import REMEMBERED, Window, col2im, im2col


def outSide(length, size, stride, pad, dilation):
    return (length + 2 * pad - dilation * (size - 1) - 1) // stride + 1


def test_output_shapes_stay_right_across_more_shapes_than_are_remembered():
    window = Window((3, 2), stride=(2, 1), pad=(1, 0), dilation=(1, 2))
    sides = [(height, width) for height in range(3, 16) for width in range(3, 16)]
    assert len(sides) > 2 * REMEMBERED
    for _ in range(2):
        for height, width in sides:
            assert window.outShape(height, width, "test") == (outSide(height, 3, 2, 1, 1), outSide(width, 2, 1, 0, 2))
    assert len(window.known) <= REMEMBERED


def test_a_window_that_does_not_fit_raises_every_time():
    window = Window(5)
    assert window.outShape(6, 6, "test") == (2, 2)
    for _ in range(2):
        with pytest.raises(ModuleError, match=r"conv: the window \(5, 5\) .* larger than the padded input \(4, 6\)"):
            window.outShape(4, 6, "conv")


def test_im2col_and_col2im_of_alternating_shapes_match_numpy():
    window = Window(3, pad=1, stride=2)
    rng = numpy.random.default_rng(0)
    for shape in [(2, 3, 7, 6), (1, 2, 5, 5), (2, 3, 7, 6), (3, 1, 4, 9), (1, 2, 5, 5)]:
        img = rng.standard_normal(shape).astype(numpy.float32)
        col = backend.toHost(im2col(backend.toDevice(img), window))
        padded = numpy.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)))
        outH, outW = outSide(shape[2], 3, 2, 1, 1), outSide(shape[3], 3, 2, 1, 1)
        for ky in range(3):
            for kx in range(3):
                numpy.testing.assert_array_equal(col[:, :, ky, kx],
                                                 padded[:, :, ky:ky + 2 * outH - 1:2, kx:kx + 2 * outW - 1:2])
        back = backend.toHost(col2im(backend.toDevice(col), window, *shape[2:]))
        expected = numpy.zeros_like(padded, dtype=numpy.float64)
        for ky in range(3):
            for kx in range(3):
                expected[:, :, ky:ky + 2 * outH - 1:2, kx:kx + 2 * outW - 1:2] += col[:, :, ky, kx]
        numpy.testing.assert_allclose(back, expected[:, :, 1:-1, 1:-1], rtol=1e-6, atol=1e-6)
