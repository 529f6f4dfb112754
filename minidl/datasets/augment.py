"""Host-side image augmentation for training: random crops of a zero-padded image and horizontal flips, drawn
from ``minidl.backend.hostGenerator()`` so that ``seed`` makes them reproducible and a checkpoint restores them."""


import numpy

from minidl.backend import hostGenerator
from minidl.errors import DataError
from minidl.validation import checkInteger


class Augment:
    """``Augment(crop=0, flip=False)``: called on a batch of images (N, C, H, W), returns a new batch where each
    image was padded with ``crop`` zeros on every side and cut back to H × W at an offset (dy, dx) drawn
    uniformly from [0, 2·crop]² (so shifted by up to ``crop`` pixels each way), then, with ``flip``, mirrored
    left-right with probability 1/2. The offsets are drawn first (N × 2 integers), then the flips (N uniforms).
    """

    def __init__(self, crop=0, flip=False):
        crop = checkInteger(crop, "crop", DataError, minimum=0)
        if not isinstance(flip, bool):
            raise DataError(f"flip must be True or False, got {flip!r}")
        self.crop, self.flip = crop, flip

    def __repr__(self):
        return f"Augment(crop={self.crop}, flip={self.flip})"

    def checkImages(self, images):
        """DataError unless ``images`` is a host batch of images (N, C, H, W) of a floating dtype."""
        if not isinstance(images, numpy.ndarray) or images.ndim != 4 or images.dtype.kind != "f":
            shape = getattr(images, "shape", None)
            raise DataError(f"augmentation needs floating host images (N, C, H, W), got {type(images).__name__} "
                            f"of shape {shape}")

    def __call__(self, images):
        self.checkImages(images)
        count, channels, height, width = images.shape
        out = images
        if self.crop:
            pad = self.crop
            padded = numpy.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            offsets = hostGenerator().integers(0, 2 * pad + 1, size=(count, 2))
            rows = offsets[:, 0, None] + numpy.arange(height)
            cols = offsets[:, 1, None] + numpy.arange(width)
            out = padded[numpy.arange(count)[:, None, None, None], numpy.arange(channels)[None, :, None, None],
                         rows[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            mirrored = hostGenerator().random(count) < 0.5
            out = numpy.where(mirrored[:, None, None, None], out[..., ::-1], out)
        return numpy.ascontiguousarray(out) if out is not images else images.copy()
