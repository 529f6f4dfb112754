"""``minidl export CHECKPOINT --onnx FILE``: a checkpoint of ``minidl train`` as an ONNX file (and/or, with
``--torch``, as a PyTorch state dict). The network is built as the run built it: its model and data set come
from the settings the checkpoint keeps (``--model`` and ``--data`` name them for a checkpoint written
otherwise); the weights and buffers come from the checkpoint, whose optimizer state is not read, in the
precision the run trained in (float16, float32 or float64: the dtype of the checkpoint's parameters).

The command never writes over its own input, nor over any existing checkpoint, without ``--overwrite``.

The ONNX file takes a batch of samples of the data set's shape, as at training ((batch, 64) for the digits
MLP, (batch, 1, 8, 8) for the digits CNN and for the LSTM of ``--task digits-rows``; MNIST 28x28, CIFAR-10
3x32x32), any batch size. A checkpoint of ``--task text`` names its language model, options and vocabulary
itself: its ONNX file takes character codes (time, batch), any length (up to the transformer's maxLength) and
batch size."""

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
from minidl.tensorfile import TensorFile
from minidl.train.checkpoint import CHECKPOINT_FORMAT, loadCheckpoint, readCheckpointSummary

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
    parser.add_argument("--overwrite", action="store_true",
                        help="write over an existing checkpoint (the input included); without it that is refused")
    parser.set_defaults(run=run)


def loadModule(path, module, model):
    """The checkpoint's parameters and buffers into ``module``; CheckpointError, nothing changed, naming the
    model when they do not match it."""
    try:
        loadCheckpoint(path, module)
    except CheckpointError as error:
        raise CheckpointError(f"{error} (was it trained as --model {model}?)") from error


def checkOutputs(args):
    """ExportError, before anything is read or written, when --onnx and --torch name one file, or one of them
    would replace the checkpoint being exported or another checkpoint and --overwrite is not given."""
    outputs = [(flag, path) for flag, path in (("--onnx", args.onnx), ("--torch", args.torch)) if path is not None]
    if len(outputs) == 2 and os.path.realpath(args.onnx) == os.path.realpath(args.torch):
        raise ExportError(f"--onnx and --torch name the same file {args.onnx}: give each its own")
    for flag, path in outputs:
        if args.overwrite or not os.path.lexists(path):
            continue
        if os.path.exists(args.checkpoint) and os.path.samefile(path, args.checkpoint):
            raise ExportError(f"{flag} {path} is the checkpoint being exported: writing it would destroy the run's "
                              "checkpoint; name another file (or pass --overwrite to replace it anyway)")
        if isCheckpoint(path):
            raise ExportError(f"{flag} {path} holds a minidl checkpoint: name another file (or pass --overwrite to "
                              "replace it)")


def isCheckpoint(path):
    """Whether ``path`` is a minidl checkpoint (judged from its header alone)."""
    try:
        with TensorFile(path, CHECKPOINT_FORMAT):
            return True
    except CheckpointError:
        return False


def trainedDtype(path, module):
    """The dtype of the checkpoint's parameters of ``module`` (the run's --dtype), from the header alone; float32
    when the file holds none of them (loading then names the mismatch)."""
    with TensorFile(path, CHECKPOINT_FORMAT) as file:
        names = [f"module.{name}" for name in module.getVarTable()]
        dtypes = {file.entries[name][0] for name in names if name in file.entries}
    if len(dtypes) > 1:
        raise CheckpointError(f"{path} mixes parameters of {sorted(map(str, dtypes))}: not a run of one --dtype")
    return dtypes.pop() if dtypes else numpy.dtype(numpy.float32)


def buildNetwork(args):
    """(module with the checkpoint's weights, a sample batch of one, its dynamic axes) as the run that wrote it
    built them, in its precision."""
    summary = readCheckpointSummary(args.checkpoint)
    if isinstance(summary.extra, dict) and summary.extra.get("task") == "text":
        return textNetwork(args)
    settings = savedSettings(summary)
    model = args.model or settings.get("model") or "mlp"
    data = args.data or settings.get("data") or "digits"
    if model not in MODELS or data not in SAMPLES:
        raise CheckpointError(f"{args.checkpoint} names model {model!r} and data {data!r}; this command builds "
                              f"{sorted(MODELS)} on {sorted(SAMPLES)}")
    spec = MODELS[model]
    shape = (math.prod(SAMPLES[data]),) if spec.flat else SAMPLES[data]
    module = spec.build(shape, CLASSES)
    dtype = trainedDtype(args.checkpoint, module)
    module.calcMode(dtype)
    loadModule(args.checkpoint, module, model)
    return module, numpy.zeros((1, *shape), dtype=dtype), {0: "batch"}


def textNetwork(args):
    """A text-task checkpoint's language model, a sample of codes (time 2, batch 1) and its two dynamic axes."""
    if args.model is not None or args.data is not None:
        raise CheckpointError(f"{args.checkpoint} is a --task text checkpoint, which names its model itself: "
                              "leave out --model and --data")
    from minidl.cli.texttask import loadForSampling

    module, _ = loadForSampling(args.checkpoint)
    return module, numpy.zeros((2, 1), dtype=numpy.int32), {0: "time", 1: "batch"}


def run(args, argv):
    if args.onnx is None and args.torch is None:
        raise ExportError("say what to write: --onnx FILE.onnx and/or --torch FILE.safetensors")
    if args.onnx is not None and importlib.util.find_spec("onnx") is None:
        raise ExportError("--onnx needs the onnx package: pip install 'minidl[onnx]'")
    checkOutputs(args)
    module, sample, dynamicAxes = buildNetwork(args)
    if args.onnx is not None:
        from minidl.onnx import export  # onnx is an optional extra: imported only when asked for

        export(module, args.onnx, toDevice(sample), dynamicAxes=dynamicAxes)
        print(f"onnx: {args.onnx}")
    if args.torch is not None:
        saveTorchStateDict(module, args.torch)
        print(f"pytorch state dict: {args.torch}")
    return 0
