"""``minidl export FILE --onnx OUT``: a checkpoint (``minidl train``, ``saveCheckpoint``) or a module file
(``module.save``) as an ONNX file (and/or, with ``--torch``, as a PyTorch state dict), in the precision it was
trained in (float16, float32 or float64). The command never writes over its own input, nor over any existing
checkpoint, without ``--overwrite``.

The network is rebuilt from the architecture the file carries (``minidl.load``), with its weights and buffers
(a checkpoint's optimizer state is not read). ``--model`` instead builds the command's model of that name, for
a checkpoint written before files carried their architecture. The ONNX file takes a batch of samples of one
shape, any batch size: ``--input-shape`` gives it (without the batch axis); for a checkpoint of ``minidl train``
it comes from the run's data set ((batch, 64) for the digits MLP, (batch, 1, 8, 8) for the digits CNN and the
LSTM of ``--task digits-rows``; MNIST 28x28, CIFAR-10 3x32x32). A checkpoint of ``--task text`` takes character
codes (time, batch), any length (up to the transformer's maxLength) and batch size."""

import argparse
import importlib.util
import math
import os

import numpy

from minidl.backend import toDevice
from minidl.cli.checks import savedSettings
from minidl.errors import CheckpointError, ExportError
from minidl.interop import saveTorchStateDict
from minidl.interop.torchstate import layersOf
from minidl.models import MODELS
from minidl.networkfile import loadNetwork
from minidl.nn.architecture import METADATA_KEY
from minidl.nn.module import MODULE_FORMAT
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


def inputShape(text):
    """An argparse type: a sample's shape without the batch axis, "64" or "1,8,8"."""
    try:
        shape = tuple(int(side) for side in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sides separated by commas (1,28,28), got {text!r}")
    return shape


def addArguments(parser):
    parser.add_argument("checkpoint", help="a checkpoint (minidl train writes DIR/checkpoint.safetensors) or a "
                                           "module file (module.save)")
    parser.add_argument("--onnx", type=outputFile, metavar="FILE.onnx", help="write the network as ONNX")
    parser.add_argument("--torch", type=outputFile, metavar="FILE.safetensors",
                        help="write the weights as a PyTorch state dict")
    parser.add_argument("--model", choices=sorted(MODELS),
                        help="build this model of the command instead of the architecture the file carries (for "
                             "a checkpoint written before files carried it)")
    parser.add_argument("--data", choices=sorted(SAMPLES),
                        help="the data set it was trained on (default: the checkpoint's, else digits)")
    parser.add_argument("--input-shape", type=inputShape, metavar="SIDES",
                        help="a sample's shape without the batch axis, e.g. 1,28,28 (default: from the data set "
                             "of a minidl train checkpoint)")
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
        if os.path.exists(path) and os.path.exists(args.checkpoint) and os.path.samefile(path, args.checkpoint):
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
    """(module with the file's weights, a sample batch of one, its dynamic axes), in the precision it was
    trained in."""
    with TensorFile(args.checkpoint, (MODULE_FORMAT, CHECKPOINT_FORMAT)) as file:
        metadata = file.metadata
    summary = readCheckpointSummary(args.checkpoint) if metadata["format"] == CHECKPOINT_FORMAT else None
    if summary is not None and isinstance(summary.extra, dict) and summary.extra.get("task") == "text":
        return textNetwork(args)
    settings = savedSettings(summary) if summary is not None else {}
    if args.model is None and METADATA_KEY in metadata:
        module = loadNetwork(args.checkpoint)
        if args.onnx is None:  # a state dict needs no sample
            return module, None, None
        shape = args.input_shape or _settingsShape(args, settings)
        parameters = list(module.getVarTable().values())
        dtype = parameters[0].data.dtype if parameters else numpy.dtype(numpy.float32)
        return module, numpy.zeros((1, *shape), dtype=dtype), {0: "batch"}
    if summary is None:
        raise CheckpointError(f"{args.checkpoint} is a module file without an architecture: it cannot be exported")
    model = args.model or settings.get("model") or "mlp"
    data = args.data or settings.get("data") or "digits"
    if model not in MODELS or data not in SAMPLES:
        raise CheckpointError(f"{args.checkpoint} names model {model!r} and data {data!r}; this command builds "
                              f"{sorted(MODELS)} on {sorted(SAMPLES)}")
    spec = MODELS[model]
    shape = args.input_shape or ((math.prod(SAMPLES[data]),) if spec.flat else SAMPLES[data])
    module = spec.build(shape, CLASSES)
    dtype = trainedDtype(args.checkpoint, module)
    module.calcMode(dtype)
    loadModule(args.checkpoint, module, model)
    return module, numpy.zeros((1, *shape), dtype=dtype), {0: "batch"}


def _settingsShape(args, settings):
    """A sample's shape from the data set and model a checkpoint of minidl train names."""
    data, model = args.data or settings.get("data"), settings.get("model")
    if data not in SAMPLES or model not in MODELS:
        raise CheckpointError(f"{args.checkpoint} does not name the data set and model of a minidl train run: give "
                              "--input-shape (a sample's shape without the batch axis, e.g. 1,28,28)")
    return (math.prod(SAMPLES[data]),) if MODELS[model].flat else SAMPLES[data]


def textNetwork(args):
    """A text-task checkpoint's language model, a sample of codes (time 2, batch 1) and its two dynamic axes."""
    if args.model is not None or args.data is not None or args.input_shape is not None:
        raise CheckpointError(f"{args.checkpoint} is a --task text checkpoint, which names its model itself: "
                              "leave out --model, --data and --input-shape")
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
    if args.torch is not None:
        layersOf(module)  # a layer without a PyTorch layout is refused before the ONNX file is written
    if args.onnx is not None:
        from minidl.onnx import export  # onnx is an optional extra: imported only when asked for

        export(module, args.onnx, toDevice(sample), dynamicAxes=dynamicAxes)
        print(f"onnx: {args.onnx}")
    if args.torch is not None:
        saveTorchStateDict(module, args.torch)
        print(f"pytorch state dict: {args.torch}")
    return 0
