"""The uint8 convert-and-normalise kernel: its paths against each other and a float64 oracle, and ImageNormalizer
(what the device receives) against the formula."""

import numpy
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.backend import toHost
from minidl.datasets.imagenormalize import ImageNormalizer, computeType, normalizeKer
from minidl.errors import DataError
from minidl.testing import arrays, checkKernel


@st.composite
def normalizeCases(draw):
    dtype = numpy.dtype(draw(st.sampled_from(["float16", "float32", "float64"])))
    compute = computeType(dtype)
    batch, channels, height, width = (draw(st.integers(1, 4)) for _ in range(4))
    x = draw(hnp.arrays(numpy.uint8, (batch, channels, height, width)))
    mean = draw(arrays(compute, (channels,), -1.0, 2.0))
    invStd = draw(arrays(compute, (channels,), 0.125, 8.0))
    return dtype, [x, mean, invStd, channels, height * width, numpy.full(x.shape, numpy.nan, dtype)]


def normalizeOracle(x, mean, invStd, channels, plane, y):
    shape = (1, channels, 1, 1)
    return [(x.astype(numpy.float64) / 255 - mean.reshape(shape)) * invStd.reshape(shape)]


def test_the_normalise_kernel_matches_its_oracle_on_every_path():
    checkKernel(normalizeKer, normalizeCases(), normalizeOracle)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_the_normalizer_gives_the_device_the_normalised_images(dtype):
    images = numpy.random.default_rng(0).integers(0, 256, (3, 3, 5, 4), dtype=numpy.uint8)
    mean, std = numpy.array([0.485, 0.456, 0.406]), numpy.array([0.229, 0.224, 0.225])
    out = ImageNormalizer(3, mean, std, dtype)(images)
    expected = (images / 255 - mean[:, None, None]) / std[:, None, None]
    assert out.dtype == numpy.dtype(dtype) and out.shape == images.shape
    numpy.testing.assert_allclose(toHost(out).astype(numpy.float64), expected,
                                  rtol={"float16": 2e-3, "float32": 1e-6, "float64": 1e-14}[dtype], atol=1e-6)


def test_the_normalizer_refuses_bad_settings_and_batches():
    with pytest.raises(DataError, match="std positive"):
        ImageNormalizer(3, 0.5, [0.2, 0.0, 0.2])
    with pytest.raises(DataError, match="one of"):
        ImageNormalizer(1, dtype="int32")
    with pytest.raises(DataError, match=r"host uint8 batch \(N, 1, H, W\)"):
        ImageNormalizer(1)(numpy.zeros((2, 3, 4, 4), numpy.uint8))
    with pytest.raises(DataError, match="host uint8 batch"):
        ImageNormalizer(1)(numpy.zeros((2, 1, 4, 4), numpy.float32))
