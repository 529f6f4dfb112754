"""A sequence model: an LSTM reads each handwritten digit as a sequence of 8 rows of 8 pixels and its final
hidden state is classified (about 97% validation accuracy in a few seconds on 2 CPU cores). Needs the
``datasets`` extra (scikit-learn) for the digits.

Sequences are (time, batch, features) in minidl, so the rows of a batch of images (batch, 1, 8, 8) become 8 steps
of (batch, 8): Reshape to (batch, 8, 8), then SwapAxes to (8, batch, 8).
"""

from minidl.backend import seed
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.nn import RNN, Linear, Reshape, Sequential, SwapAxes
from minidl.optim import Adam
from minidl.train import Trainer, Validator

seed(0)
digits = loadDigits(flat=False)  # images of shape (1, 8, 8)
net = Sequential(
    Reshape((-1, 8, 8)),  # (batch, rows, pixels)
    SwapAxes(0, 1),  # (rows, batch, pixels): one step per row
    RNN(8, 64, mode="lstm"),  # the final hidden state, (batch, 64)
    Linear(64, digits.classes),
)
net.summary((32, 1, 8, 8))

optimizer = Adam(alpha=0.01).setupOn(net, useGlobalState=True)
trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32, verbose=False)
validator = Validator(net, CrossEntropy(), verbose=False)
for epoch in range(1, 9):
    trainError = trainer.trainFromHost(digits.trainData, digits.trainLabels)
    validator.validateFromHost(digits.valData, digits.valLabels)
    print(f"epoch {epoch}  train error {trainError:.4f}  val accuracy {validator.accuracy:.2%}")
