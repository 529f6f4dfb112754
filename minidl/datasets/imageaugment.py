"""Augmentation of decoded training images, drawn from (seed, epoch, sample index) alone.

Each sample's draws come from its own counter-based generator, ``numpy.random.Philox`` keyed by
``sampleKey(seed, epoch, index)``, so an image is augmented the same way whichever process decodes it and in
whatever order: the results do not depend on the number of workers, and a run resumed mid-epoch redraws them.
Every sample draws the same nine numbers in one order (whatever is switched on), so switching one
transformation on changes no other's draws:

1. area fraction a ~ U[scale]; 2. log aspect ratio r ~ U[log 3/4, log 4/3]; 3, 4. the box's position
   u, v ~ U[0, 1); 5. flip ~ U[0, 1) < 1/2; 6-8. brightness, contrast and saturation factors ~ U[1 − j, 1 + j];
   9. quarter turns k ~ {0, 1, 2, 3}.

* **random resized crop** (``scale=(low, high)``): a box of width √(a A e^r), height √(a A / e^r) (A the
  image's area), each clipped to the image's side, placed at (u (W − w), v (H − h)); decoded straight to the
  output size (see ImageDecoder). Without ``scale`` the centred square is kept.
* **flip**: left-right mirror with probability 1/2.
* **colour jitter** (``jitter=j``): x ← x·b (brightness), then x ← m + c (x − m) with m the image's mean grey
  level (contrast), then x ← g + s (x − g) with g each pixel's grey level (saturation; RGB only), in float32,
  rounded to nearest and clipped to [0, 255]. Grey = 0.299 R + 0.587 G + 0.114 B.
* **rotation** (``rotate=True``): k quarter turns counter-clockwise (the images are square).
"""

import math

import numpy

from minidl.errors import DataError

STREAM_ORDER, STREAM_AUGMENT, STREAM_SPLIT = 1, 2, 3  # what a keyed generator is drawn for
GREY = numpy.array([0.299, 0.587, 0.114], dtype=numpy.float32)


def sampleKey(seed, stream, epoch, index=0):
    """A Philox key (two 64-bit words) for one purpose (``stream``), epoch and sample index."""
    seed, epoch, index = int(seed), int(epoch), int(index)
    if not (0 <= seed < 2**64 and 0 <= epoch < 2**30 and 0 <= index < 2**32):
        raise DataError(f"a random key needs 0 <= seed < 2**64, epoch < 2**30 and index < 2**32, got {seed}, "
                        f"{epoch}, {index}")
    return numpy.array([seed, (stream << 62) | (epoch << 32) | index], dtype=numpy.uint64)


def keyedGenerator(seed, stream, epoch, index=0):
    return numpy.random.Generator(numpy.random.Philox(key=sampleKey(seed, stream, epoch, index)))


class ImageAugment:
    """``ImageAugment(scale=None, flip=False, jitter=0.0, rotate=False)``: with ``draws = draws(seed, epoch,
    index)``, ``box(draws)`` gives the decoder's crop, ``apply(pixels, draws)`` the rest, on uint8 (C, H, W)
    pixels."""

    def __init__(self, scale=None, flip=False, jitter=0.0, rotate=False):
        if scale is not None:
            if not (isinstance(scale, tuple) and len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
                raise DataError(f"scale must be a pair (low, high) with 0 < low <= high <= 1, got {scale!r}")
            scale = (float(scale[0]), float(scale[1]))
        if not isinstance(flip, bool) or not isinstance(rotate, bool):
            raise DataError(f"flip and rotate must be True or False, got {flip!r} and {rotate!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise DataError(f"jitter must be a number in [0, 1), got {jitter!r}")
        self.scale, self.flip, self.jitter, self.rotate = scale, flip, float(jitter), rotate

    def __repr__(self):
        return f"ImageAugment(scale={self.scale}, flip={self.flip}, jitter={self.jitter:g}, rotate={self.rotate})"

    @staticmethod
    def draws(seed, epoch, index):
        """One sample's nine draws (eight uniforms, the quarter turns), made once and given to ``box`` and
        ``apply``."""
        generator = keyedGenerator(seed, STREAM_AUGMENT, epoch, index)
        uniforms = generator.random(8)
        return uniforms, int(generator.integers(0, 4))

    def box(self, draws):
        """The crop as a function of the image's (width, height), or None (the centred square)."""
        if self.scale is None:
            return None
        (area, ratio, u, v, *_), _ = draws
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * area
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * ratio)

        def crop(width, height):
            boxWidth = min(width, math.sqrt(area * width * height * ratio))
            boxHeight = min(height, math.sqrt(area * width * height / ratio))
            left, top = u * (width - boxWidth), v * (height - boxHeight)
            return left / width, top / height, (left + boxWidth) / width, (top + boxHeight) / height

        return crop

    def apply(self, pixels, draws):
        (_, _, _, _, flip, *factors), turns = draws
        if self.jitter:
            brightness, contrast, saturation = (1 - self.jitter + 2 * self.jitter * factor for factor in factors)
            pixels = jitterColours(pixels, brightness, contrast, saturation)
        if self.flip and flip < 0.5:
            pixels = pixels[:, :, ::-1]
        if self.rotate and turns:
            pixels = numpy.rot90(pixels, turns, axes=(1, 2))
        return numpy.ascontiguousarray(pixels)


def jitterColours(pixels, brightness, contrast, saturation):
    """Brightness, contrast and saturation factors on uint8 (C, H, W) pixels, in float32, rounded and clipped."""
    x = pixels.astype(numpy.float32) * numpy.float32(brightness)
    grey = x[0] if len(x) == 1 else numpy.tensordot(GREY, x, axes=1)
    mean = numpy.float32(grey.mean(dtype=numpy.float64))
    x = mean + numpy.float32(contrast) * (x - mean)
    if len(x) == 3:
        grey = numpy.tensordot(GREY, x, axes=1)
        x = grey + numpy.float32(saturation) * (x - grey)
    return numpy.clip(numpy.rint(x), 0, 255).astype(numpy.uint8)
