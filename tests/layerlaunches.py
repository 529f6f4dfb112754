"""Launches of one training step of single layers on the simulated device, as JSON on stdout: the layer's forward
and backward (∂x and the parameters' gradients) on a random batch, counted after a warm-up step. Run by
tests/nn/test_layer_launches.py (``MINIDL_BACKEND=simulated python -m tests.layerlaunches``)."""

import json
import sys

import numpy

from minidl import backend
from minidl.backend.simulated import trace
from minidl.nn import BatchNorm2D, Conv2D

LAYERS = {  # name: (the layer, its input shape); the geometries of resnet18 at 3x32x32 and a few more
    "batchnorm2d 32x64x32x32": (lambda: BatchNorm2D(64), (32, 64, 32, 32)),
    "batchnorm2d 32x512x4x4": (lambda: BatchNorm2D(512), (32, 512, 4, 4)),
    "batchnorm2d 5x3x7x9": (lambda: BatchNorm2D(3), (5, 3, 7, 9)),
    "conv2d 3x3 pad 1 64->64 at 32x32": (lambda: Conv2D(64, 64, 3, pad=1, useBias=False), (32, 64, 32, 32)),
    "conv2d 3x3 stride 2 64->128 at 32x32": (lambda: Conv2D(64, 128, 3, stride=2, pad=1, useBias=False),
                                             (32, 64, 32, 32)),
    "conv2d 1x1 stride 2 64->128 at 32x32": (lambda: Conv2D(64, 128, 1, stride=2, useBias=False), (32, 64, 32, 32)),
    "conv2d 3x3 pad 1 256->256 at 8x8": (lambda: Conv2D(256, 256, 3, pad=1, useBias=False), (32, 256, 8, 8)),
    "conv2d 3x3 pad 1 512->512 at 4x4": (lambda: Conv2D(512, 512, 3, pad=1, useBias=False), (32, 512, 4, 4)),
    "conv2d 1x1 64->32 at 8x8": (lambda: Conv2D(64, 32, 1, useBias=False), (8, 64, 8, 8)),
    "conv2d 5x5 3->6 at 28x28": (lambda: Conv2D(3, 6, 5, useBias=False), (8, 3, 28, 28)),
    "conv2d 3x3 pad 1 16->16 at 8x8 with bias": (lambda: Conv2D(16, 16, 3, pad=1), (8, 16, 8, 8)),
}


def launches(make, shape):
    """(launches of forward and backward, [their kernel names]) of one trainMode step of a fresh layer."""
    rng = numpy.random.default_rng(0)
    module = make()
    module.trainMode()
    x = backend.toDevice(rng.standard_normal(shape, dtype=numpy.float32))
    grad = backend.toDevice(rng.standard_normal(module(x).shape, dtype=numpy.float32))
    module.backward(grad)
    with trace.recording() as recorded:
        module(x)
        module.backward(grad)
    return [launch.name for launch in recorded.launches]


def main():
    backend.seed(0)
    json.dump({name: launches(*layer) for name, layer in LAYERS.items()}, sys.stdout)


if __name__ == "__main__":
    main()
