"""LeNet: the classic LeNet-5, and the smaller LeNet-style CNN of the digits command."""

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


def lenet(sampleShape, classes):
    """LeNet-5 (LeCun et al. 1998, with ReLU and max pooling): Conv2D 5x5 to 6 maps (padded by 2, as for
    28x28 digits) → ReLU → 2x2 MaxPool2D → Conv2D 5x5 to 16 maps → ReLU → 2x2 MaxPool2D → Linear(120) → ReLU →
    Linear(84) → ReLU → Linear to the class scores (1x28x28: 6x28x28, 6x14x14, 16x10x10, 16x5x5 = 400). The
    second convolution is padded by 2 too where its input is smaller than 5x5 (1x8x8 digits: 16x2x2 = 64)."""
    inmaps, height, width = sampleShape
    height, width = height // 2, width // 2
    pad = 0 if min(height, width) >= 5 else 2
    height, width = (height + 2 * pad - 4) // 2, (width + 2 * pad - 4) // 2
    return Sequential().extend([
        Conv2D(inmaps, 6, 5, pad=2), Activation(relu), MaxPool2D(),
        Conv2D(6, 16, 5, pad=pad), Activation(relu), MaxPool2D(), Flatten(),
        Linear(16 * height * width, 120), Activation(relu), Linear(120, 84), Activation(relu), Linear(84, classes),
    ])
