"""``minidl.load(path)``: the network a module file (``module.save``) or a checkpoint (``saveCheckpoint``) holds,
rebuilt from the architecture in its metadata (minidl.nn.architecture) with the file's weights and buffers.

The whole file is read and verified by its checksum before anything is built, so the architecture used is the
one written with the weights; the rebuilt network's names, shapes and dtypes must then be exactly the file's
(a checkpoint's optimizer state is not read into anything). Nothing in the file is run: module types and
functions come from the registry.
"""

from minidl.backend import getRandomState, setRandomState
from minidl.errors import CheckpointError, ModuleError
from minidl.nn.architecture import METADATA_KEY
from minidl.nn.module import MODULE_FORMAT
from minidl.nn.rebuild import rebuild
from minidl.tensorfile import TensorFile, copyTensorsAfter
from minidl.train.checkpoint import CHECKPOINT_FORMAT


def loadNetwork(path):
    """The network of the file at ``path`` with its weights, in train mode as a fresh module (call
    ``evalMode()`` to predict); the backend's random state is as it was. CheckpointError when the file is
    missing, damaged or foreign, carries no architecture, names a module type or function the registry does
    not know, or its tensors do not fit it."""
    with TensorFile(path, (MODULE_FORMAT, CHECKPOINT_FORMAT)) as file:
        tensors = file.read()
        metadata = file.metadata
    prefix = "module." if metadata["format"] == CHECKPOINT_FORMAT else ""
    state = getRandomState()
    try:  # the constructors draw initial weights, which the file's replace: the caller's random stream stays
        network = rebuild(metadata.get(METADATA_KEY), path)
    finally:
        setRandomState(state)
    stored = {name[len(prefix):]: array for name, array in tensors.items() if name.startswith(prefix)}
    targets = network.getArrayTable()
    for name, target in targets.items():
        if name not in stored:
            raise CheckpointError(f"{path}: the network its architecture describes has {name!r}, which the file "
                                  "does not hold")
        if stored[name].shape != target.shape or stored[name].dtype != target.dtype:
            raise CheckpointError(f"{path}: tensor {prefix}{name} is {stored[name].dtype} {stored[name].shape}, the "
                                  f"network its architecture describes has {target.dtype} {target.shape}")
    extra = sorted(set(stored) - set(targets))
    if extra:
        raise CheckpointError(f"{path}: tensors {extra[:8]} belong to no array of the network its architecture "
                              "describes")
    copyTensorsAfter(path, lambda: network.checkBufferValues(stored), ModuleError, targets, stored)
    return network
