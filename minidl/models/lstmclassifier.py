"""A sequence classifier: the rows of each sample are the steps of a sequence read by an LSTM, whose final
hidden state a Linear layer maps to the class scores."""

import math

from minidl.nn import RNN, Linear, Reshape, Sequential, SwapAxes


def lstmClassifier(sampleShape, classes, hidden=64):
    """For samples of shape (..., rows, features) (digits as (1, 8, 8): 8 rows of 8 pixels; an image of several
    channels as the rows of one channel after those of the other): Reshape to (batch, steps, features), every row
    of a sample a step → SwapAxes to (steps, batch, features) → RNN(lstm) → Linear."""
    steps, features = math.prod(sampleShape[:-1]), sampleShape[-1]
    return Sequential().extend([
        Reshape((-1, steps, features)), SwapAxes(0, 1), RNN(features, hidden, mode="lstm"), Linear(hidden, classes),
    ])
