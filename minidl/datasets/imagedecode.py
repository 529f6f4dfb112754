"""Decoding one image file (JPEG or PNG, through Pillow: ``pip install 'minidl[images]'``) to a fixed-size uint8
array (channels, size, size).

The image is converted to grey ("L", 1 channel) or RGB (3 channels): palette, grey-with-alpha, RGBA (alpha
dropped), CMYK and YCbCr images convert; 16-bit, 32-bit integer and float images are refused (their range has no
single 8-bit meaning). A box of the image (by default the centred square of the shorter side) is resized to
size × size with bilinear filtering in one step. A JPEG much larger than the box needs is first decoded at a
reduced scale (Pillow's ``draft``: 1/2, 1/4 or 1/8, the DCT's own scaling), which changes the pixels slightly
but identically every time.
"""

import io
import math

import numpy

from minidl.errors import DataError

CHANNELS = {1: "L", 3: "RGB"}
FORMATS = ("JPEG", "PNG")
CONVERTIBLE = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")


def pillow():
    """The Pillow Image module; DataError naming the extra when Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("image files need Pillow: pip install 'minidl[images]'") from None
    return Image


class ImageDecoder:
    """``ImageDecoder(size, channels=3)``; ``decode(data, name, box=None)`` returns uint8 (channels, size, size).

    ``box(width, height)``, when given, returns the region to keep as fractions of the image's sides
    ``(left, top, right, bottom)`` in [0, 1]; without it the centred square of side min(width, height) is kept.
    A file Pillow cannot read, of another format, or of a mode that has no 8-bit conversion is a DataError
    naming ``name``.
    """

    def __init__(self, size, channels=3):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DataError(f"the image size must be a positive integer, got {size!r}")
        if channels not in CHANNELS:
            raise DataError(f"images are decoded to 1 (grey) or 3 (RGB) channels, got {channels!r}")
        self.size, self.channels = size, channels

    def __repr__(self):
        return f"ImageDecoder(size={self.size}, channels={self.channels})"

    @property
    def shape(self):
        return self.channels, self.size, self.size

    def decode(self, data, name, box=None):
        Image = pillow()
        try:
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise DataError(f"{name} is a {image.format} image: expected JPEG or PNG")
            if image.mode not in CONVERTIBLE:
                raise DataError(f"{name} has the mode {image.mode!r} (16-bit, 32-bit or float pixels), which has no "
                                f"8-bit conversion: expected one of {', '.join(CONVERTIBLE)}")
            width, height = image.size
            left, top, right, bottom = box(width, height) if box is not None else centreSquare(width, height)
            keep = max((right - left) * width, 1), max((bottom - top) * height, 1)
            if image.format == "JPEG":
                # the smallest DCT scale that still leaves the box at least size pixels on each side
                image.draft(CHANNELS[self.channels], (math.ceil(self.size * width / keep[0]),
                                                      math.ceil(self.size * height / keep[1])))
            image = image.convert(CHANNELS[self.channels])
            width, height = image.size
            image = image.resize((self.size, self.size), Image.BILINEAR,
                                 box=(left * width, top * height, right * width, bottom * height))
            pixels = numpy.asarray(image, dtype=numpy.uint8)
        except DataError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise DataError(f"{name} cannot be decoded: {error}") from error
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def centreSquare(width, height):
    """The centred square of side min(width, height), as fractions (left, top, right, bottom)."""
    side = min(width, height)
    left, top = (width - side) / 2 / width, (height - side) / 2 / height
    return left, top, 1 - left, 1 - top
