"""Sequence layers forward + backward (input and parameter gradients): minidl's RNN (lstm, gru) against
PyTorch's nn.LSTM / nn.GRU, and minidl's TransformerBlock against nn.TransformerEncoderLayer (pre-norm, tanh
GELU, no dropout, causal mask), same shapes, same machine, same run.

    python -m benchmarks.sequence [--repeats 10]
"""

import argparse

import numpy

from benchmarks.timing import machine, medianSeconds
from minidl import backend
from minidl.nn import RNN, TransformerBlock

# name, kind, (time, batch, features), hidden/heads option
CASES = [
    ("LSTM 1 layer, 128 hidden", "lstm", (64, 32, 128), 128),
    ("LSTM 2 layers bi, 128 hidden", "lstm2bi", (64, 32, 128), 128),
    ("GRU 1 layer, 128 hidden", "gru", (64, 32, 128), 128),
    ("TransformerBlock 128 embed, 4 heads", "transformer", (64, 32, 128), 4),
    ("TransformerBlock 256 embed, 8 heads", "transformer", (128, 16, 256), 8),
]


def buildMinidl(kind, shape, option):
    if kind == "transformer":
        return TransformerBlock(shape[2], option, causal=True)
    layers, direction = (2, "bi") if kind == "lstm2bi" else (1, "uni")
    return RNN(shape[2], option, layers=layers, mode=kind[:4].rstrip("2"), direction=direction, getSequences=True)


def minidlSeconds(kind, shape, option, repeats):
    module = buildMinidl(kind, shape, option)
    data = backend.toDevice(backend.generator().standard_normal(shape), dtype=numpy.float32)
    grad = backend.xp.ones_like(module(data))

    def step():
        module(data)
        module.backward(grad)

    return medianSeconds(step, repeats=repeats, warmup=2)


def buildTorch(torch, kind, shape, option):
    """PyTorch's counterpart of ``buildMinidl``: (its module, its forward function on data)."""
    if kind == "transformer":
        module = torch.nn.TransformerEncoderLayer(
            shape[2], option, dim_feedforward=4 * shape[2], dropout=0.0, norm_first=True,
            activation=lambda x: torch.nn.functional.gelu(x, approximate="tanh"))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(shape[0])
        return module, lambda data: module(data, src_mask=mask, is_causal=True)
    cls = torch.nn.GRU if kind == "gru" else torch.nn.LSTM
    bidirectional = kind == "lstm2bi"
    module = cls(shape[2], option, num_layers=2 if bidirectional else 1, bidirectional=bidirectional)
    return module, lambda data: module(data)[0]


def torchSeconds(torch, kind, shape, option, repeats):
    _, forward = buildTorch(torch, kind, shape, option)
    data = torch.randn(shape, requires_grad=True)

    def step():
        out = forward(data)
        out.backward(torch.ones_like(out))

    return medianSeconds(step, repeats=repeats, warmup=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per case (the median is shown)")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    if backend.isGpu:
        torch = None  # the comparison is with PyTorch's CPU layers
    backend.seed(0)
    versus = f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else "no PyTorch CPU run"
    print(f"# {machine()}; {versus}")
    print("\nForward + backward, float32, (time, batch, features)\n")
    print("| layer | (time, batch, features) | minidl ms | PyTorch ms | minidl / PyTorch |")
    print("|---|---|---:|---:|---:|")
    # every minidl row first, then every torch row: torch's idle OpenMP threads would otherwise spin on the
    # cores that NumPy's BLAS needs
    seconds = [minidlSeconds(kind, shape, option, args.repeats) for _, kind, shape, option in CASES]
    references = [torchSeconds(torch, kind, shape, option, args.repeats) if torch else None
                  for _, kind, shape, option in CASES]
    for (name, _, shape, _), mine, reference in zip(CASES, seconds, references):
        torchText = f"{reference * 1e3:.2f}" if reference else "-"
        ratio = f"{mine / reference:.2f}" if reference else "-"
        print(f"| {name} | {shape} | {mine * 1e3:.2f} | {torchText} | {ratio} |")


if __name__ == "__main__":
    main()
