"""Data sets as host arrays: the digits scikit-learn ships (extra ``datasets``) and synthetic blobs."""

from minidl.datasets.dataset import DataSet
from minidl.datasets.digits import loadDigits
from minidl.datasets.synthetic import gaussianBlobs
from minidl.errors import DataError

__all__ = ["DataError", "DataSet", "gaussianBlobs", "loadDigits"]
