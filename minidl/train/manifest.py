"""The manifest of a run: what its numbers are a function of, as JSON beside its checkpoint.

    {"format": "minidl-manifest/1", "minidl": "0.1.0", "git": "<revision>" or null,
     "kernels": {kernel name: sha256 of its source}, "device": {backend, versions, ...},
     "seed": 0, "data": {name: sha256 of the array} or null, "settings": {...}}

``git`` is the revision of the checkout minidl is imported from, with ``+dirty`` when its tracked files differ
from it, or null when minidl is not in a git checkout. ``kernels`` lists every Elementwise kernel made so far in
the process (``minidl.backend.elementwise.registry``): the CUDA text, parameters, preamble and NumPy reference's
source hashed together. A data array's hash covers its dtype, shape and bytes (C order); image files are
identified by ``imageSourceHash`` (names, labels, sizes and contents), a text by its characters' codes and
vocabulary. ``settings`` is the command line's or the caller's (``Trainer`` settings by default for the
``Manifest`` callback).
"""

import hashlib
import inspect
import json
import os
import pickle
import subprocess

import numpy

import minidl
from minidl.atomicfile import writeAtomically
from minidl.backend.elementwise import registry
from minidl.backend.identity import deviceIdentity
from minidl.errors import CallbackError, CheckpointError, DataError
from minidl.train.callbacks import Callback, checkFolderOf

FORMAT = "minidl-manifest/1"


def referenceText(reference):
    """A kernel reference's Python source, or, for one that has none (a compiled function such as numpy.copyto, one
    typed at an interactive prompt), where it lives: its module and qualified name."""
    try:
        return inspect.getsource(reference)
    except (OSError, TypeError):
        return f"{getattr(reference, '__module__', None)}.{getattr(reference, '__qualname__', repr(reference))}"


def kernelHash(kernel):
    """sha256 (hex) of a kernel's whole source: name, parameters, operation, preamble, grain, reference."""
    parts = (kernel.name, kernel.inParams, kernel.outParams, kernel.operation, kernel.preamble, kernel.grain,
             referenceText(kernel.reference))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def kernelHashes():
    return {kernel.name: kernelHash(kernel) for kernel in sorted(registry, key=lambda kernel: kernel.name)}


def arrayHash(array):
    """sha256 (hex) of a host array's dtype, shape and bytes in C order."""
    if not isinstance(array, numpy.ndarray):
        raise CallbackError(f"a data hash reads host (NumPy) arrays, got {type(array).__name__}")
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(numpy.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def imageSourceHash(source):
    """sha256 (hex) of an image source (``minidl.datasets.imagesources``): its kind and class names, and for each
    image in order its name, label, size and the sha256 of its bytes, read through a copy of the source (the
    source's own open archive is left to its loader)."""
    copy = pickle.loads(pickle.dumps(source))  # a copy holds no open archive handle: it opens its own
    digest = hashlib.sha256(json.dumps([source.kind, list(source.classes)]).encode())
    try:
        for index, (name, label) in enumerate(copy.entries):
            try:
                content = copy.read(index)
            except OSError as error:
                raise DataError(f"cannot read {source.describe(index)} to hash the data: {error}") from error
            digest.update(f"{name}\0{label}\0{len(content)}\0".encode())
            digest.update(hashlib.sha256(content).digest())
    finally:
        handle = copy.__dict__.get("handle")
        if handle is not None:
            handle.close()
    return digest.hexdigest()


def gitRevision():
    """The revision of the git checkout minidl's package sits in (``+dirty`` with uncommitted changes to tracked
    files), or None when it sits in none or git is missing."""
    folder = os.path.dirname(os.path.abspath(minidl.__file__))
    try:
        head = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def makeManifest(settings, seed=None, data=None):
    """The manifest (a dict) of a run with JSON-ready ``settings``, ``seed`` and ``data`` ({name: a host array,
    hashed here, or the hex hash of data that are no array, such as ``imageSourceHash``'s})."""
    try:
        json.dumps(settings, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CallbackError(f"manifest settings must be JSON values: {error}") from error
    return {
        "format": FORMAT, "minidl": minidl.__version__, "git": gitRevision(), "kernels": kernelHashes(),
        "device": deviceIdentity(), "seed": seed,
        "data": None if data is None else {key: value if isinstance(value, str) else arrayHash(value)
                                           for key, value in sorted(data.items())},
        "settings": settings,
    }


def writeManifest(path, manifest):
    writeAtomically(path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode(), CheckpointError)


def readManifest(path):
    """The manifest at ``path``; CheckpointError when it is not one."""
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read the manifest {path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minidl manifest (format {FORMAT})")
    return manifest


def trainerSettings(trainer):
    """A Trainer's settings as JSON values: network, cost, optimizer and its hyperparameters, batch size."""
    optimizer = trainer.optimizer
    return {"module": repr(trainer.module), "cost": type(trainer.cost).__name__, "optimizer": repr(optimizer),
            "hypers": {name: getattr(optimizer, name) for name in optimizer.hyperNames},
            "batchsize": trainer.batchsize}


class Manifest(Callback):
    """``Manifest(path, seed=None, data=None, settings=None)``: write the run's manifest to ``path`` at its start
    (after a resume's restore: the kernels are those the built network made); ``settings`` default to the
    Trainer's (``trainerSettings``)."""

    writesFiles = True

    def __init__(self, path, seed=None, data=None, settings=None):
        self.path, self.seed, self.data, self.settings = os.fspath(path), seed, data, settings

    def check(self, fit, names):
        checkFolderOf(self.path, repr(self))

    def onFitStart(self, fit):
        settings = trainerSettings(fit.trainer) if self.settings is None else self.settings
        writeManifest(self.path, makeManifest(settings, self.seed, self.data))
