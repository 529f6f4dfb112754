"""Data sets as host arrays: the digits scikit-learn ships (extra ``datasets``), synthetic blobs, MNIST /
Fashion-MNIST and CIFAR-10 from files a user downloaded, and host-side image augmentation."""

from minidl.datasets.augment import Augment
from minidl.datasets.cifar10 import loadCifar10
from minidl.datasets.dataset import DataSet
from minidl.datasets.digits import loadDigits
from minidl.datasets.mnist import loadMnist
from minidl.datasets.synthetic import gaussianBlobs
from minidl.errors import DataError

__all__ = ["Augment", "DataError", "DataSet", "gaussianBlobs", "loadCifar10", "loadDigits", "loadMnist"]
