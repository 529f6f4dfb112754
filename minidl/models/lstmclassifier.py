"""A sequence classifier: the rows of each sample are the steps of a sequence read by an LSTM, whose final
hidden state a Linear layer maps to the class scores."""

from minidl.nn import RNN, Linear, Reshape, Sequential, SwapAxes


def lstmClassifier(sampleShape, classes, hidden=64):
    """For samples of shape (..., steps, features) (digits as (1, 8, 8): 8 rows of 8 pixels):
    Reshape to (batch, steps, features) → SwapAxes to (steps, batch, features) → RNN(lstm) → Linear."""
    steps, features = sampleShape[-2:]
    return Sequential().extend([
        Reshape((-1, steps, features)), SwapAxes(0, 1), RNN(features, hidden, mode="lstm"), Linear(hidden, classes),
    ])
