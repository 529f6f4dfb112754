"""The multilayer perceptron: Linear → ReLU per hidden width, then Linear to the class scores."""

from minidl.nn import Activation, Linear, Sequential, relu


def mlp(sampleShape, classes, hidden=(256, 256)):
    """Linear → ReLU per hidden width, then Linear to the class scores (64-256-256-10 on digits)."""
    net = Sequential()
    size = sampleShape[0]
    for width in hidden:
        net.extend([Linear(size, width, initscheme="he"), Activation(relu)])
        size = width
    return net.append(Linear(size, classes))
