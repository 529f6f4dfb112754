"""``minidl export CHECKPOINT --onnx FILE``: a checkpoint of ``minidl train`` as an ONNX file (and/or, with
``--torch``, as a PyTorch state dict). The network is built as the run built it: its model and data set come
from the settings the checkpoint keeps (``--model`` and ``--data`` name them for a checkpoint written
otherwise); the weights and buffers come from the checkpoint, whose optimizer state is not read.

The ONNX file takes a batch of samples of the data set's shape, as at training ((batch, 64) for the digits
MLP, (batch, 1, 8, 8) for the digits CNN; MNIST 28x28, CIFAR-10 3x32x32), any batch size."""

import argparse
import importlib.util
import math
import os

import numpy

from minidl.backend import toDevice
from minidl.cli.checks import savedSettings
from minidl.errors import CheckpointError, ExportError
from minidl.interop import saveTorchStateDict
from minidl.models import MODELS
from minidl.train.checkpoint import loadCheckpoint, readCheckpointSummary

SAMPLES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CLASSES = 10  # every data set of the command has ten classes


def outputFile(text):
    """An argparse type: a file path whose folder exists (checked before anything is read)."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        raise argparse.ArgumentTypeError(f"no folder {os.path.dirname(os.path.abspath(text))} to write it in")
    return text


def addArguments(parser):
    parser.add_argument("checkpoint", help="a checkpoint written by minidl train (DIR/checkpoint.safetensors)")
    parser.add_argument("--onnx", type=outputFile, metavar="FILE.onnx", help="write the network as ONNX")
    parser.add_argument("--torch", type=outputFile, metavar="FILE.safetensors",
                        help="write the weights as a PyTorch state dict")
    parser.add_argument("--model", choices=sorted(MODELS),
                        help="the network it was trained as (default: the one the checkpoint names, else mlp)")
    parser.add_argument("--data", choices=sorted(SAMPLES),
                        help="the data set it was trained on (default: the checkpoint's, else digits)")
    parser.set_defaults(run=run)


def loadModule(path, module, model):
    """The checkpoint's parameters and buffers into ``module``; CheckpointError, nothing changed, naming the
    model when they do not match it."""
    try:
        loadCheckpoint(path, module)
    except CheckpointError as error:
        raise CheckpointError(f"{error} (was it trained as --model {model}?)") from error


def buildNetwork(args):
    """(module with the checkpoint's weights, a sample batch of one) as the run that wrote it built them."""
    settings = savedSettings(readCheckpointSummary(args.checkpoint))
    model = args.model or settings.get("model") or "mlp"
    data = args.data or settings.get("data") or "digits"
    if model not in MODELS or data not in SAMPLES:
        raise CheckpointError(f"{args.checkpoint} names model {model!r} and data {data!r}; this command builds "
                              f"{sorted(MODELS)} on {sorted(SAMPLES)}")
    spec = MODELS[model]
    shape = (math.prod(SAMPLES[data]),) if spec.flat else SAMPLES[data]
    module = spec.build(shape, CLASSES)
    loadModule(args.checkpoint, module, model)
    return module, numpy.zeros((1, *shape), dtype=numpy.float32)


def run(args, argv):
    if args.onnx is None and args.torch is None:
        raise ExportError("say what to write: --onnx FILE.onnx and/or --torch FILE.safetensors")
    if args.onnx is not None and importlib.util.find_spec("onnx") is None:
        raise ExportError("--onnx needs the onnx package: pip install 'minidl[onnx]'")
    module, sample = buildNetwork(args)
    if args.onnx is not None:
        from minidl.onnx import export  # onnx is an optional extra: imported only when asked for

        export(module, args.onnx, toDevice(sample))
        print(f"onnx: {args.onnx}")
    if args.torch is not None:
        saveTorchStateDict(module, args.torch)
        print(f"pytorch state dict: {args.torch}")
    return 0
