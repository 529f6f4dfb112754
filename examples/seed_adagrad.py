"""The seed page's example (AdaGrad in the reference framework's manual), with only its imports changed.

A two-layer network built as a Graph fits random targets with AdaGrad; the error printed every 5
iterations falls. Runs on the GPU when one answers, else on the CPU.
"""

import numpy as np

from minidl.backend import gpuarray
from minidl.cost import MSE
from minidl.nn import Activation, Graph, Linear, relu
from minidl.optim import AdaGrad

data = gpuarray.to_gpu(np.random.randn(16, 128).astype(np.float32))
target = gpuarray.to_gpu(np.random.randn(16, 1).astype(np.float32))

inp = Linear(128, 64).node()
out = Linear(64, 1).node(Activation(relu).node(inp))
net = Graph(inputs=inp, outputs=out)

optimizer = AdaGrad(learnRate=0.01)
optimizer.setupOn(net, useGlobalState=True)
loss = MSE()

for i in range(100):
    predictions = net(data)
    error, grad = loss(predictions, target)

    optimizer.zeroGradParams()
    net.backward(grad)
    optimizer.update()

    if (i + 1) % 5 == 0:
        print("Iteration #%d error: %s" % (i + 1, error))
