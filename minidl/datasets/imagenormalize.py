"""ImageNormalizer: a host batch of uint8 images to normalised floating images on the device, in one kernel.

The uint8 batch (N, C, H, W) is copied to the device as it is (a quarter of float32's bytes), and one
Elementwise kernel converts and normalises it there:

    y[n, c, h, w] = (x[n, c, h, w] / 255 − mean[c]) · (1 / std[c]),

computed in the compute type S of ``y``'s dtype T (float32 for float16 and float32, float64 for float64),
rounded once to T. ``mean`` and ``std`` are per channel, in units of the full range (0.5 and 0.25 map [0, 255]
to [−2, 2]).
"""

import numpy

from minidl.backend import Elementwise, toDevice, xp
from minidl.errors import DataError

FLOATS = ("float16", "float32", "float64")


def _normalizeNumpy(x, mean, invStd, channels, plane, y):
    values = x.reshape(-1, channels, plane).astype(mean.dtype)
    values *= mean.dtype.type(1 / 255)
    values -= mean[:, None]
    values *= invStd[:, None]
    y[...] = values.reshape(y.shape)


normalizeKer = Elementwise(
    "minidl_image_normalize",
    "uint8 x, raw S mean, raw S invStd, int32 channels, int32 plane",
    "T y",
    "const int c = (i / plane) % channels; y = (T)(((S)x * (S)(1.0 / 255.0) - mean[c]) * invStd[c])",
    _normalizeNumpy,
)


def computeType(dtype):
    return numpy.dtype(numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32)


class ImageNormalizer:
    """``ImageNormalizer(channels, mean=0.5, std=0.25, dtype="float32")``; ``normalizer(batch)`` takes a host uint8
    batch (N, channels, H, W) and returns the device array of ``dtype`` above. ``mean`` and ``std``: one number
    for every channel or one per channel; every std must be positive and finite."""

    def __init__(self, channels, mean=0.5, std=0.25, dtype="float32"):
        if str(numpy.dtype(dtype)) not in FLOATS:
            raise DataError(f"images are normalised to one of {FLOATS}, got {dtype!r}")
        self.channels, self.dtype = channels, numpy.dtype(dtype)
        mean, std = (numpy.broadcast_to(numpy.asarray(value, dtype=numpy.float64), (channels,))
                     for value in (mean, std))
        if not (numpy.isfinite(mean).all() and numpy.isfinite(std).all() and (std > 0).all()):
            raise DataError(f"mean must be finite and std positive and finite, got {mean.tolist()}, {std.tolist()}")
        self.mean, self.std = mean.tolist(), std.tolist()
        compute = computeType(dtype)
        self.meanArray = toDevice(mean.astype(compute))
        self.invStdArray = toDevice((1 / std).astype(compute))

    def __repr__(self):
        return f"ImageNormalizer(mean={self.mean}, std={self.std}, {self.dtype})"

    def __call__(self, batch):
        if not isinstance(batch, numpy.ndarray) or batch.dtype != numpy.uint8 or batch.ndim != 4 \
                or batch.shape[1] != self.channels:
            raise DataError(f"expected a host uint8 batch (N, {self.channels}, H, W), got {type(batch).__name__} "
                            f"{getattr(batch, 'dtype', '')} of shape {getattr(batch, 'shape', None)}")
        images = toDevice(numpy.ascontiguousarray(batch))
        out = xp.empty(batch.shape, dtype=self.dtype)
        normalizeKer(images, self.meanArray, self.invStdArray, self.channels, batch.shape[2] * batch.shape[3], out)
        return out
