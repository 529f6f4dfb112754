"""``minidl train --data folder:PATH`` (and ``tar:``, ``zip:``, ``list:``): the command's image-file options.

The source's samples are split once, from ``--seed``, into a training part and a validation part
(``--val-fraction``); both are decoded to ``--channels`` × ``--image-size`` × ``--image-size`` uint8 images by
``--workers`` worker processes (0: in the training process), and converted to the run's ``--dtype`` on the
device. With ``--augment`` the training images get a random resized crop (area 35-100 %), a left-right flip and
colour jitter of ±20 %, drawn from (seed, epoch, sample); validation images are the centred square. A run can
write its checkpoint every ``--checkpoint-steps`` steps as well as after each epoch, and ``--resume`` then
continues mid-epoch on exactly the batches the run would have seen. The image settings are kept in the
checkpoint (``ImageSettings``) and a resume that changes them is refused.
"""

import argparse

from minidl.datasets.imageaugment import ImageAugment
from minidl.datasets.imagedecode import ImageDecoder
from minidl.datasets.imageloader import ImagePipeline, splitIndices
from minidl.datasets.imagenormalize import ImageNormalizer
from minidl.datasets.imagesources import SOURCES, openSource
from minidl.errors import CallbackError, DataError
from minidl.train.callbacks import Callback

DEFAULTS = {"workers": 0, "image_size": 32, "channels": 3, "val_fraction": 0.1}
AUGMENT = {"scale": (0.35, 1.0), "flip": True, "jitter": 0.2}


def isImageSource(text):
    return text is not None and text.partition(":")[0] in SOURCES and ":" in text


def fraction(text):
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value:g}")
    return value


def addImageArguments(parser, atLeast):
    group = parser.add_argument_group("image files (--data folder:PATH, tar:FILE, zip:FILE or list:FILE)")
    group.add_argument("--workers", type=atLeast(0),
                       help="processes decoding and augmenting images; 0: in the training process (default: 0)")
    group.add_argument("--image-size", type=atLeast(1), metavar="PIXELS",
                       help="side of the square images the model sees (default: 32)")
    group.add_argument("--channels", type=int, choices=(1, 3), help="1: grey, 3: RGB (default: 3)")
    group.add_argument("--val-fraction", type=fraction,
                       help="share of the images held out for validation, drawn from --seed (default: 0.1)")
    group.add_argument("--skip-corrupt", action="store_true",
                       help="leave out an image that cannot be decoded, and count it, instead of stopping")
    group.add_argument("--checkpoint-steps", type=atLeast(1), metavar="STEPS",
                       help="also write the checkpoint every STEPS steps inside an epoch (resumable mid-epoch)")


def checkImageFlags(args, flat):
    """Fill the image options' defaults for an image source, refuse them for the other data sets."""
    given = [name for name in (*DEFAULTS, "skip_corrupt", "checkpoint_steps", "digest_steps") if getattr(args, name)]
    if not isImageSource(args.data):
        if given:
            raise DataError(f"--{given[0].replace('_', '-')} goes with image files: --data folder:PATH, tar:FILE, "
                            f"zip:FILE or list:FILE")
        return
    if args.data_dir is not None:
        raise DataError(f"--data {args.data} names its files itself: leave out --data-dir")
    if flat:
        raise DataError(f"--model {args.model} takes flat samples: image files train cnn, lenet, resnet18 or "
                        "resnet34")
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def openImageData(args):
    """(pipeline, training loader, validation loader) of the command's image source and options."""
    source = openSource(args.data)
    trainIndices, valIndices = splitIndices(len(source), args.val_fraction, args.seed)
    augment = ImageAugment(**AUGMENT) if args.augment else None
    pipeline = ImagePipeline(source, ImageDecoder(args.image_size, args.channels), args.batch_size, augment,
                             seed=args.seed, workers=args.workers, skipCorrupt=args.skip_corrupt,
                             normalizer=ImageNormalizer(args.channels, dtype=args.dtype))
    return pipeline, pipeline.loader(trainIndices, train=True), pipeline.loader(valIndices, train=False)


class ImageSettings(Callback):
    """The image options a checkpoint of an image run keeps; a resume with other values is refused (the
    samples, their split and their shape would not be the checkpoint's)."""

    NAMES = ("image_size", "channels", "val_fraction", "augment")

    def __init__(self, args):
        self.settings = {name: getattr(args, name) for name in self.NAMES}

    def getAttrDict(self):
        return dict(self.settings)

    def checkAttrDict(self, attrs):
        """CallbackError (a CheckpointError on resume) unless ``attrs`` are this run's settings."""
        if not isinstance(attrs, dict) or set(attrs) != set(self.NAMES):
            raise CallbackError(f"{self!r} state must have the entries {list(self.NAMES)}, got {attrs!r:.200}")
        for name in self.NAMES:
            if attrs[name] != self.settings[name]:
                flag = "--" + name.replace("_", "-")
                raise CallbackError(f"{flag} {self.settings[name]} contradicts the checkpoint, whose run has "
                                    f"{attrs[name]}: give {flag} the run's value to resume it")

    def setAttrDict(self, attrs):
        self.checkAttrDict(attrs)
