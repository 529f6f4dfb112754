"""``minidl export CHECKPOINT --onnx FILE``: a checkpoint of ``minidl train`` as an ONNX file (and/or, with
``--torch``, as a PyTorch state dict). The model is named as at training (``--model``); its weights and
buffers come from the checkpoint, the optimizer's state is not read."""

import importlib.util

from minidl.backend import toDevice
from minidl.cli.train import fileInFolder
from minidl.datasets import loadDigits
from minidl.errors import CheckpointError, ExportError
from minidl.interop import saveTorchStateDict
from minidl.models import MODELS
from minidl.tensorfile import checkTensors, copyTensors, readTensors
from minidl.train.checkpoint import CHECKPOINT_FORMAT

MODULE_PREFIX = "module."


def addArguments(parser):
    parser.add_argument("checkpoint", help="a checkpoint written by minidl train (DIR/checkpoint.safetensors)")
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp",
                        help="the network it was trained as (default: mlp)")
    parser.add_argument("--onnx", type=fileInFolder, metavar="FILE.onnx", help="write the network as ONNX")
    parser.add_argument("--torch", type=fileInFolder, metavar="FILE.safetensors",
                        help="write the weights as a PyTorch state dict")
    parser.set_defaults(run=run)


def loadModule(path, module, model):
    """Copy the ``module.*`` tensors of a checkpoint into ``module``; CheckpointError, nothing changed, when
    they do not match it."""
    tensors, _ = readTensors(path, CHECKPOINT_FORMAT)
    moduleTensors = {name[len(MODULE_PREFIX):]: array for name, array in tensors.items()
                     if name.startswith(MODULE_PREFIX)}
    targets = module.getArrayTable()
    try:
        checkTensors(moduleTensors, targets, path)
    except CheckpointError as error:
        raise CheckpointError(f"{error} (was it trained as --model {model}?)") from error
    copyTensors(targets, moduleTensors)


def run(args, argv):
    if args.onnx is None and args.torch is None:
        raise ExportError("say what to write: --onnx FILE.onnx and/or --torch FILE.safetensors")
    if args.onnx is not None and importlib.util.find_spec("onnx") is None:
        raise ExportError("--onnx needs the onnx package: pip install 'minidl[onnx]'")
    spec = MODELS[args.model]
    data = loadDigits(flat=spec.flat)
    module = spec.build(data.trainData.shape[1:], data.classes)
    loadModule(args.checkpoint, module, args.model)
    if args.onnx is not None:
        from minidl.onnx import export  # onnx is an optional extra: imported only when asked for

        export(module, args.onnx, toDevice(data.valData[:1]))
        print(f"onnx: {args.onnx}")
    if args.torch is not None:
        saveTorchStateDict(module, args.torch)
        print(f"pytorch state dict: {args.torch}")
    return 0
