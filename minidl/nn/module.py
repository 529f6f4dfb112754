"""Module: the base of every layer and container.

A module maps input ``data`` to ``self.data`` in ``__call__`` and, in ``backward(grad)``, maps
``grad = ∂error/∂self.data`` to ``self.grad = ∂error/∂input`` while ADDING its parameters' gradients to
``var.grad`` (so gradients accumulate until an optimizer's ``zeroGradParams``).

A subclass implements ``updData(data)``, ``updGrad(grad)`` and, if it has parameters,
``accGradParams(grad)``; it checks its input in ``checkData(data)``. Every check runs before any array
changes. The arrays a backward pass reads are named in ``cacheAttrs``, so a container can run one module
at several places of a graph.
"""

import contextlib
import functools
from dataclasses import dataclass

import numpy

from minidl.backend import toHost, xp
from minidl.errors import ModuleError
from minidl.nn.architecture import architectureMetadata
from minidl.nn.registry import CLASSES, enter
from minidl.nn.summary import moduleTree, summaryTable, zerosOfShape
from minidl.tensorfile import copyTensorsAfter, readTensors, writeTensors
from minidl.variable import FLOAT_DTYPES, Rebinds, Variable

SETTING_TYPES = (int, float, bool, str, type(None))  # what a module's setting is (an array or a module is not)

MODULE_FORMAT = "minidl.module"


def describe(value):
    """'float32 (16, 128)' for an array, the type name for anything else: for error messages."""
    if isinstance(value, xp.ndarray):
        return f"{value.dtype} {value.shape}"
    if isinstance(value, numpy.ndarray):
        return f"host (NumPy) array {value.dtype} {value.shape}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(item) for item in value) + "]"
    return type(value).__name__


def checkArray(value, what, ndim=None, dtype=None, floating=False):
    """Raise ModuleError unless ``value`` is a device array with the given number of dims and dtype (with
    ``floating``, of a floating dtype)."""
    if not isinstance(value, xp.ndarray):
        raise ModuleError(f"{what} must be a {xp.__name__} array on the backend's device, got {describe(value)}")
    if ndim is not None and value.ndim != ndim:
        raise ModuleError(f"{what} must have {ndim} dimensions, got shape {value.shape}")
    if dtype is not None and value.dtype != dtype:
        raise ModuleError(f"{what} must have dtype {numpy.dtype(dtype)}, got {value.dtype}")
    if floating and not numpy.issubdtype(value.dtype, numpy.floating):
        raise ModuleError(f"{what} must have a floating dtype, got {value.dtype}")


def checkNotEmpty(module, data):
    """Raise ModuleError unless ``data`` holds at least one value: a batch of no samples (or maps of no positions)
    is refused by the modules whose kernels walk samples and maps."""
    if data.size == 0:
        raise ModuleError(f"{module!r}: input must hold at least one sample and one value per sample, got shape "
                          f"{data.shape}")


def checkArrayList(data, what, sameShape=True):
    """Raise ModuleError unless ``data`` is a list of at least 2 device arrays of one dtype (and, with
    ``sameShape``, one shape): the input of a merge module."""
    if not isinstance(data, (list, tuple)) or len(data) < 2:
        raise ModuleError(f"{what} must be a list of at least 2 arrays, got {describe(data)}")
    checkArray(data[0], f"{what}[0]")  # the others are held to its dtype
    for index, item in enumerate(data):
        checkArray(item, f"{what}[{index}]", dtype=data[0].dtype)
        if sameShape and item.shape != data[0].shape:
            raise ModuleError(f"{what}s must have one shape, got {[array.shape for array in data]}")


def checkLike(value, reference, what):
    """Raise ModuleError unless ``value`` matches ``reference`` (an array or a list of arrays) in structure,
    shape and dtype."""
    if isinstance(reference, list):
        if not isinstance(value, (list, tuple)) or len(value) != len(reference):
            raise ModuleError(f"{what} must be a list of {len(reference)} arrays, got {describe(value)}")
        for index, (item, ref) in enumerate(zip(value, reference)):
            checkLike(item, ref, f"{what}[{index}]")
        return
    checkArray(value, what, dtype=reference.dtype)
    if value.shape != reference.shape:
        raise ModuleError(f"{what} must have shape {reference.shape}, got {value.shape}")


class Module:
    """Base of layers and containers: parameters in ``vars``, forward by call, backward by ``backward``."""

    cacheAttrs = ("inData", "data")
    sharedInBackward = ()

    def __init_subclass__(cls, **kwargs):
        """Every subclass's constructor records its arguments (for the architecture saved with the weights), and
        minidl's own classes join the registry of types a saved architecture may name."""
        super().__init_subclass__(**kwargs)
        # the constructor the class runs: its own, or a mixin's placed before the modules among its bases (Pool1D's
        # in MaxPool1D), which must record the arguments it was given, not those it passes on to the module's
        owner = next(base for base in cls.__mro__ if "__init__" in base.__dict__)
        if owner is cls or not issubclass(owner, Module):
            cls.__init__ = _recordingArguments(owner.__dict__["__init__"])
        if cls.__module__.startswith("minidl.") and not cls.__name__.startswith("_") and "<" not in cls.__qualname__:
            enter(CLASSES, cls, cls.__qualname__)

    def __init__(self, name=None):
        if name is not None and not isinstance(name, str):
            raise ModuleError(f"{type(self).__name__}: name must be a string or None, got {type(name).__name__} "
                              f"{name!r:.60}")
        self.name = name
        self.vars = {}
        self.train = True
        self.inData = None
        self.data = None
        self.grad = None

    def __setattr__(self, name, value):
        """A number, flag or word of the module's settings set to a new value (a Dropout's rate; not the mode,
        ``train``, nor what a pass keeps, ``cacheAttrs`` and ``sharedInBackward``) counts in ``Rebinds``: a
        recorded pass (``minidl.nn.captured``, ``minidl.train.capturedstep``) took the old one as given."""
        old = self.__dict__.get(name, value)
        if (type(value) in SETTING_TYPES and type(old) in SETTING_TYPES and old != value and name != "train"
                and name not in self.cacheAttrs and name not in self.sharedInBackward):
            Rebinds.count += 1
        object.__setattr__(self, name, value)

    def __getattr__(self, attr):
        variables = self.__dict__.get("vars")
        if variables is not None and attr in variables:
            return variables[attr].data
        raise AttributeError(f"{type(self).__name__} has no attribute {attr!r}")

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"{type(self).__name__}{label}"

    def describeIn(self, encoder):
        """This module as an argument of a constructor in a saved architecture (minidl.nn.architecture)."""
        return {"$ref": encoder.module(self)}

    def constructorArguments(self):
        """``(args, kwargs)`` that build this module again (weights aside): by default those its constructor was
        called with. A module whose structure changes after construction (Sequential's ``append``) overrides it."""
        return self.__dict__.get("_constructorArguments", ((), {}))

    # forward and backward

    def __call__(self, data):
        self.checkData(data)
        self.inData = data
        self.data = self.updData(data)
        return self.data

    def backward(self, grad, updGrad=True):
        """Accumulate parameter gradients and, when ``updGrad``, compute ``self.grad`` (∂error/∂input). The
        attributes named in ``sharedInBackward`` (what updGrad and accGradParams compute once and share) are
        cleared when it ends, so the next pass computes them anew."""
        self.checkGrad(grad)
        try:
            self.grad = self.updGrad(grad) if updGrad else None
            self.accGradParams(grad)
        finally:
            for attr in self.sharedInBackward:
                setattr(self, attr, None)
        return self.grad

    def saveCache(self):
        """The arrays the next backward pass reads, so a module used at several places can be rewound."""
        return {attr: getattr(self, attr) for attr in self.cacheAttrs}

    def restoreCache(self, cache):
        self.__dict__.update(cache)

    def checkGrad(self, grad):
        """Raise ModuleError unless a forward pass ran and ``grad`` matches its output (structure, shape, dtype)."""
        if self.data is None:
            raise ModuleError(f"{self!r}: backward() called before a forward pass")
        checkLike(grad, self.data, f"{self!r}: gradient")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")

    def updData(self, data):
        raise NotImplementedError

    def updGrad(self, grad):
        raise NotImplementedError

    def accGradParams(self, grad):
        """Add this module's parameter gradients into ``var.grad``; nothing to do without parameters."""

    # parameters

    def setVar(self, name, var):
        if not isinstance(var, Variable):
            raise ModuleError(f"{self!r}: setVar({name!r}, ...) takes a Variable (data, grad, learnRate), got "
                              f"{describe(var)}")
        self.vars[name] = var
        Rebinds.count += 1

    def getVar(self, name):
        if name not in self.vars:
            raise ModuleError(f"{self!r} has no variable {name!r}; it has {sorted(self.vars)}")
        return self.vars[name]

    def getVarTable(self):
        """An ordered dict from qualified name to Variable, each Variable once."""
        return dict(self.vars)

    def getBufferTable(self):
        """An ordered dict from qualified name to each array of state that is not trained (BatchNorm's running
        statistics); the module updates them in place, so a checkpoint may write into them, and in train mode only
        (a container copies none before an eval pass)."""
        return {}

    def markBuffers(self):
        """Before a train pass that may fail halfway (``Container.__call__``): what ``restoreBuffers`` puts back
        (by default a copy of each buffer)."""
        return {name: buffer.copy() for name, buffer in self.getBufferTable().items()}

    def restoreBuffers(self, mark):
        """Put the buffers back as ``markBuffers`` found them."""
        for name, buffer in self.getBufferTable().items():
            buffer[...] = mark[name]

    def minTrainBatch(self):
        """The fewest samples a trainMode batch may hold (BatchNorm over (N, C) needs 2)."""
        return 1

    def checkBufferValues(self, arrays):
        """ModuleError unless loaded host ``arrays`` (named as in ``getArrayTable()``) hold buffer values this
        module can have; a module whose buffers are constrained (BatchNorm's variance) overrides it."""

    def getArrayTable(self):
        """Every array that saving keeps: each parameter's data under its ``getVarTable()`` name, then each
        buffer under its ``getBufferTable()`` name."""
        table = {name: var.data for name, var in self.getVarTable().items()}
        for name, buffer in self.getBufferTable().items():
            if name in table:
                raise ModuleError(f"{self!r}: buffer {name!r} has the name of a parameter")
            table[name] = buffer
        return table

    def calcMode(self, dtype):
        """Make the module compute in ``dtype`` (float16, float32 or float64): every parameter is converted (a new
        data array, a zero gradient), and the buffers by ``castBuffers``. Variables get new arrays, so an optimizer
        must be set up again afterwards. Its input must then be of ``dtype`` (``Cast`` converts at the edges)."""
        try:  # numpy.dtype(None) would be float64
            if dtype is None:
                raise TypeError("no dtype")
            dtype = numpy.dtype(dtype)
        except TypeError as error:
            raise ModuleError(f"calcMode needs a dtype (float16, float32 or float64), got {dtype!r}") from error
        if dtype not in FLOAT_DTYPES:
            raise ModuleError(f"calcMode needs float16, float32 or float64, got {dtype}")
        for var in self.getVarTable().values():
            if var.data.dtype != dtype:
                var.data = var.data.astype(dtype)
                var.grad = xp.zeros_like(var.data)
        self.castBuffers(dtype)
        Rebinds.count += 1
        return self

    def castBuffers(self, dtype):
        """Convert the buffers for ``calcMode(dtype)`` (none by default)."""

    def stateDtypes(self):
        """The dtypes of what ``calcMode`` converts: the parameters' (a module whose arrays of its own follow
        calcMode too, PositionalEmbedding's fixed table, adds theirs), recorded in a saved architecture."""
        return {var.data.dtype for var in self.getVarTable().values()}

    def numOfParams(self):
        return sum(int(var.data.size) for var in self.getVarTable().values())

    def save(self, path):
        """Write the parameters and buffers to a safetensors file, one tensor per name of ``getArrayTable()``
        ("0.W", "fc1.b", "1.mean", ...), metadata ``format = "minidl.module"`` and ``architecture`` (what
        ``minidl.load`` rebuilds the network from: minidl.nn.architecture). Atomic: a failed write keeps
        the old file."""
        tensors = {name: toHost(array) for name, array in self.getArrayTable().items()}
        writeTensors(path, tensors, {"format": MODULE_FORMAT, **architectureMetadata(self)})

    def load(self, path):
        """Read parameters and buffers written by ``save`` (on any device) into this module's arrays, in place.

        CheckpointError, with every array unchanged, unless the file holds exactly this module's names,
        shapes and dtypes.
        """
        targets = self.getArrayTable()
        tensors, _ = readTensors(path, MODULE_FORMAT, targets)
        copyTensorsAfter(path, lambda: self.checkBufferValues(tensors), ModuleError, targets, tensors)
        return self

    # modes and graph building

    def trainMode(self):
        self.train = True
        return self

    def evalMode(self):
        self.train = False
        return self

    def walk(self):
        """This module, then every module inside it (a container's children, recursively)."""
        yield self

    def children(self):
        """The modules inside this one by name: none (a container has its children)."""
        return {}

    def summary(self, inputShape, dtype=numpy.float32, file=None):
        """Print (to ``file``, default stdout) and return a table of every module's output shape and parameter
        count for an input of ``inputShape`` (batch axis included; a list of shapes for several inputs), and
        the total. Runs one forward pass on zeros in eval mode; every module's mode is put back."""
        data = zerosOfShape(inputShape, dtype)
        with evaluating(self):
            output = self(data)
        text = summaryTable(self, data, output)
        print(text, file=file)
        return text

    def __str__(self):
        """The module tree: each module with its parameters' dtypes and shapes, children indented."""
        return moduleTree(self)

    def node(self, *parents):
        """A graph Node that runs this module on the outputs of ``parents`` (none for a graph input)."""
        return Node(self, *parents)


def _recordingArguments(constructor):
    """``constructor`` that first records, once per module (the outermost call), the arguments it was given."""

    @functools.wraps(constructor)
    def __init__(self, *args, **kwargs):
        if "_constructorArguments" not in self.__dict__:
            self.__dict__["_constructorArguments"] = (args, kwargs)
        constructor(self, *args, **kwargs)

    return __init__


Module.__init__ = _recordingArguments(Module.__init__)


@contextlib.contextmanager
def evaluating(module):
    """Run a block with ``module`` in eval mode, then give every module inside it back its previous mode."""
    modes = [(each, each.train) for each in module.walk()]
    module.evalMode()
    try:
        yield module
    finally:
        for each, train in modes:
            each.train = train


class Node:
    """One use of a module in a graph; ``parents`` are the nodes whose outputs it consumes."""

    def __init__(self, module, *parents):
        if not isinstance(module, Module):
            raise ModuleError(f"a Node wraps a Module, got {type(module).__name__}")
        self.module = module
        self.parents = []
        self.outputIndices = []  # per parent: None to take its whole output, i to take output i of a list
        self.addParents(*parents)

    def addParents(self, *parents):
        for parent in parents:
            if not isinstance(parent, (Node, NodeOutput)):
                raise ModuleError(f"{self!r}: parents must be Nodes or node[i], got {type(parent).__name__}")
        for parent in parents:
            node, index = (parent.node, parent.index) if isinstance(parent, NodeOutput) else (parent, None)
            self.parents.append(node)
            self.outputIndices.append(index)
        return self

    def __getitem__(self, index):
        """Output ``index`` of this node's multi-output module, to be given as a parent."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ModuleError(f"{self!r}[{index!r}]: an output index is a non-negative int")
        return NodeOutput(self, index)

    __iter__ = None  # indexing is for picking outputs: a Node is not a sequence

    def describeIn(self, encoder):
        """This node as an argument of a constructor in a saved architecture (minidl.nn.architecture)."""
        return {"$ref": encoder.node(self)}

    def __repr__(self):
        return f"Node({self.module!r})"


@dataclass(frozen=True)
class NodeOutput:
    """``node[index]``: one output of a node whose module returns a list."""

    node: Node
    index: int

    def describeIn(self, encoder):
        """This output as an argument of a constructor in a saved architecture (minidl.nn.architecture)."""
        return {"$output": [encoder.node(self.node), self.index]}
