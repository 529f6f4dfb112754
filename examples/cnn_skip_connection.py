"""A small residual CNN on the handwritten digits, built as a Graph with a skip connection.

    image → Conv2D 3x3 → BatchNorm2D → ReLU ─┬─ Conv2D 3x3 → BatchNorm2D ─┐
                                             └───────────────────────────┴→ Add → ReLU → pool → Linear

Trained for a few epochs with Adam; prints the validation accuracy (about 97% in a few seconds on 2 CPU
cores). Needs the ``datasets`` extra (scikit-learn) for the digits.
"""

from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.nn import Activation, Add, BatchNorm2D, Conv2D, Flatten, Graph, Linear, MaxPool2D, relu
from minidl.optim import Adam
from minidl.train import Trainer, Validator

digits = loadDigits(flat=False)  # images of shape (1, 8, 8)

image = Conv2D(1, 16, 3, pad=1).node()  # a node without parents is a graph input
stem = Activation(relu).node(BatchNorm2D(16).node(image))
branch = BatchNorm2D(16).node(Conv2D(16, 16, 3, pad=1).node(stem))
merged = Activation(relu).node(Add().node(stem, branch))  # the skip connection: stem + branch
scores = Linear(16 * 4 * 4, digits.classes).node(Flatten().node(MaxPool2D().node(merged)))
net = Graph(inputs=image, outputs=scores)
net.summary((1, 1, 8, 8))

optimizer = Adam(alpha=0.003).setupOn(net, useGlobalState=True)
trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32)
validator = Validator(net, CrossEntropy(), verbose=False)
for epoch in range(1, 6):
    trainError = trainer.trainFromHost(digits.trainData, digits.trainLabels)
    validator.validateFromHost(digits.valData, digits.valLabels)
    print(f"epoch {epoch}  train error {trainError:.4f}  val accuracy {validator.accuracy:.2%}")
