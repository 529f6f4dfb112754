"""Calculator: batched inference over host data, results gathered back on the host."""

import numpy

from minidl.backend import toHost
from minidl.errors import ModuleError
from minidl.nn import CapturedForward, Module
from minidl.nn.module import evaluating
from minidl.train.batches import checkHostData, checkPositive, deviceBatches, progressBar
from minidl.validation import checkFlag


class Calculator:
    """``Calculator(module, batchsize=128, capture=True)``: ``calcFromHost(data)`` is the module's output on every
    sample. With ``capture`` the forward pass of each batch shape is recorded once and replayed
    (``minidl.nn.CapturedForward``: the same bits, without the modules' Python); ``capture=False`` runs it
    ordinarily every time."""

    def __init__(self, module, batchsize=128, verbose=True, capture=True):
        if not isinstance(module, Module):
            raise ModuleError(f"Calculator expects a Module, got {type(module).__name__}")
        self.module = module
        self.forward = CapturedForward(module) if checkFlag(capture, "capture") else module
        self.batchsize = checkPositive("batchsize", batchsize)
        self.verbose = verbose

    def calcFromHost(self, data, macroBatchSize=10000):
        """The outputs (a host array, samples on axis 0) of a module with one output, in eval mode
        (every module's previous mode is put back afterwards)."""
        size = checkHostData(data, names=("data",))
        macroBatchSize = checkPositive("macroBatchSize", macroBatchSize)
        outputs = []
        with evaluating(self.module), progressBar(size, "calculate", self.verbose) as progress:
            for (batch,) in deviceBatches((data,), self.batchsize, macroBatchSize, progress=progress):
                out = self.forward(batch)
                host = toHost(out)
                outputs.append(host.copy() if host is out else host)  # a replay's output is overwritten by the next
        return numpy.concatenate(outputs)
