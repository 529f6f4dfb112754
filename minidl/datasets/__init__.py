"""Data sets as host arrays: the digits scikit-learn ships (extra ``datasets``), synthetic blobs, MNIST /
Fashion-MNIST and CIFAR-10 from files a user downloaded, and host-side image augmentation; image files (folders,
tar and zip archives, list files; extra ``images``) decoded and augmented in worker processes by an
ImagePipeline, whose ImageLoaders feed a Trainer."""

from minidl.datasets.augment import Augment
from minidl.datasets.cifar10 import loadCifar10
from minidl.datasets.dataset import DataSet
from minidl.datasets.digits import loadDigits
from minidl.datasets.imageaugment import ImageAugment
from minidl.datasets.imagedecode import ImageDecoder
from minidl.datasets.imageloader import ImageLoader, ImagePipeline, splitIndices
from minidl.datasets.imagenormalize import ImageNormalizer
from minidl.datasets.imagesources import openSource
from minidl.datasets.mnist import loadMnist
from minidl.datasets.synthetic import gaussianBlobs
from minidl.errors import DataError

__all__ = [
    "Augment", "DataError", "DataSet", "ImageAugment", "ImageDecoder", "ImageLoader", "ImageNormalizer",
    "ImagePipeline", "gaussianBlobs", "loadCifar10", "loadDigits", "loadMnist", "openSource", "splitIndices",
]
