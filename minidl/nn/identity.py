"""Identity: data = inData, grad_in = grad."""

from minidl.nn.module import Module


class Identity(Module):
    """Passes data and gradients through unchanged (useful as a named graph input)."""

    def updData(self, data):
        return data

    def updGrad(self, grad):
        return grad
