"""TransformerBlock: the pre-norm block of GPT-2 and most transformers since, on (time, batch, embed) data:

    y = x + Dropout(Attention(LayerNorm₁(x)))
    out = y + Dropout(Linear₂(GELU(Linear₁(LayerNorm₂(y)))))

so backward is ∂y = ∂out + (MLP branch)ᵀ ∂out and ∂x = ∂y + (attention branch)ᵀ ∂y.
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.activation import Activation
from minidl.nn.activationfunctions import gelu
from minidl.nn.add import add
from minidl.nn.attention import MultiHeadAttention
from minidl.nn.container import Container
from minidl.nn.dropout import Dropout
from minidl.nn.layernorm import LayerNorm
from minidl.nn.linear import Linear


class TransformerBlock(Container):
    """``TransformerBlock(embed, heads, hidden=4·embed, dropout=0.0, causal=True)``; input data, or
    [data, padding] (see MultiHeadAttention); output of the data's shape."""

    def __init__(self, embed, heads, hidden=None, dropout=0.0, causal=True, dtype=numpy.float32, name=None):
        super().__init__(name)
        hidden = 4 * embed if hidden is None else hidden
        self.blocks = {
            "norm1": LayerNorm(embed, dtype=dtype),
            "attention": MultiHeadAttention(embed, heads, dropout=dropout, causal=causal, dtype=dtype),
            "drop1": Dropout(dropout),
            "norm2": LayerNorm(embed, dtype=dtype),
            "fc1": Linear(embed, hidden, dtype=dtype),
            "gelu": Activation(gelu),
            "fc2": Linear(hidden, embed, dtype=dtype),
            "drop2": Dropout(dropout),
        }

    def children(self):
        return dict(self.blocks)

    def uses(self):
        if not self.caches:
            return []
        return [(name, module, self.caches[name]) for name, module in self.blocks.items()]

    def forward(self, data):
        sequence, padding = (data[0], data[1]) if isinstance(data, (list, tuple)) else (data, None)
        if isinstance(data, (list, tuple)) and len(data) != 2:
            raise ModuleError(f"{self!r}: input must be data or [data, padding], got {len(data)} arrays")
        b = self.blocks
        normed = b["norm1"](sequence)
        attended = b["drop1"](b["attention"](normed if padding is None else [normed, padding]))
        middle = add(sequence, attended)
        out = add(middle, b["drop2"](b["fc2"](b["gelu"](b["fc1"](b["norm2"](middle))))))
        self.inData, self.data = data, out
        self.caches = {name: module.saveCache() for name, module in b.items()}
        return out

    def backward(self, grad, updGrad=True):
        self.checkGrad(grad)
        for name, module in self.blocks.items():
            module.restoreCache(self.caches[name])
        dmiddle = grad
        for name in ("drop2", "fc2", "gelu", "fc1", "norm2"):
            dmiddle = self.blocks[name].backward(dmiddle)
        dmiddle = add(dmiddle, grad)
        dattention = self.blocks["attention"].backward(self.blocks["drop1"].backward(dmiddle))
        padded = isinstance(dattention, list)
        dnormed = self.blocks["norm1"].backward(dattention[0] if padded else dattention, updGrad=updGrad)
        if not updGrad:  # a training step's first module: norm1's parameters' gradients, no ∂input
            self.grad = None
            return None
        dsequence = add(dmiddle, dnormed)
        self.grad = [dsequence, None] if padded else dsequence
        return self.grad
