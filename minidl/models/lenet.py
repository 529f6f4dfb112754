"""The LeNet-style CNN of the digits command: small padded convolutions, pooling, a linear head."""

from minidl.nn import Activation, BatchNorm2D, Conv2D, Dropout, Flatten, Linear, MaxPool2D, Sequential, relu


def cnn(sampleShape, classes, maps=(8, 16), hidden=32):
    """LeNet-style: per entry of maps a 3x3 Conv2D (padded) → ReLU → 2x2 MaxPool2D, BatchNorm2D after the
    first convolution; then Flatten → Linear(hidden) → ReLU → Dropout(0.2) → Linear to the class scores
    (on digits: 1x8x8 → 8x4x4 → 16x2x2 → 64 → 32 → 10)."""
    inmaps, height, width = sampleShape
    net = Sequential()
    for index, outmaps in enumerate(maps):
        net.append(Conv2D(inmaps, outmaps, 3, pad=1))
        if index == 0:
            net.append(BatchNorm2D(outmaps))
        net.extend([Activation(relu), MaxPool2D()])
        inmaps, height, width = outmaps, height // 2, width // 2
    return net.extend([Flatten(), Linear(inmaps * height * width, hidden), Activation(relu), Dropout(0.2),
                       Linear(hidden, classes)])
