"""Reduction: one reduction declared in ``cupy.ReductionKernel`` vocabulary, runnable on both devices.

    sumSquares = Reduction("minidl_sum_squares", inParams="T x", outParams="T y", mapExpr="x * x",
                           reduceExpr="a + b", postMapExpr="y = a", identity="0", reference=sumSquaresNumpy)
    sumSquares(x, y, axis=1)                # y[i] = sum over j of x[i, j]^2
    meanOf(x, mean, axis=(0, 2, 3), keepdims=True)

Each output element reduces the input elements that share its position on the kept axes: ``mapExpr`` (an
expression of the inputs' elements and the scalars) maps each of them to a value of the reduce type, ``reduceExpr``
joins two such values ``a`` and ``b`` (it must be associative and commutative: the paths join in different
orders), starting from ``identity`` (a C expression of the reduce type), and ``postMapExpr`` writes the outputs
from the result ``a``. The reduce type is ``reduceType`` (a C type, or a placeholder), by default the first
output's type, as in CuPy: reductions over float16 data should name ``float``.

Arguments follow Elementwise's rules (``[raw] type name`` parameters, placeholders bound from the arrays, every
argument checked before anything runs), and CuPy's for a reduction: the non-raw inputs have the input's shape,
or its shape with the reduced axes of size 1 (an input read once per output element, such as a row's mean), or
with the kept axes of size 1 (an input read once per reduced position, such as a feature's scale when rows are
reduced): CuPy's broadcasting, in the only two forms minidl allows; the outputs have the reduced shape (``keepdims``:
the reduced axes kept as 1), are passed (minidl allocates nothing) and are updated in place and returned.
``axis`` is an int, a tuple of ints or None (every axis), as in NumPy and CuPy. Raw inputs are indexed by the
expressions themselves, and need the reduced axes to be the leading ones (CuPy refuses them otherwise). The
expressions may use ``_in_ind.size()`` and ``_out_ind.size()``, the element counts of the input and of the output,
and ``mapExpr`` CuPy's ``_i`` (the output element's flat index) and ``_J`` (the element's position among the values
its output reduces, in C order of the reduced axes), as CuPy's own argmax does.

- On a GPU: the memoized ``cupy.ReductionKernel`` of the same text (compiled with ``CUPY_OPTIONS``: no fused
  multiply-adds). CuPy sums in a tree: a block of threads per few output elements, a grid-stride walk per thread,
  then shared-memory halving. The first call with an axis, a keepdims, argument types and arrays' dtypes and
  shapes checks everything and prepares the later ones (``devicelaunch.PreparedLaunch``: contiguity, dtypes, the
  scalars typed, then CuPy's call).
- On NumPy arrays: the text compiled for the host (``reductionsource``: one output element per iteration of a
  loop split over minidl's threads, the reduced elements walked in C order into 8 partial accumulators joined
  in a fixed tree, so a result is the same on every run and thread count) or the NumPy reference, as ``cpuPath``
  and ``MINIDL_CPU_KERNELS`` say (as for Elementwise); ``callNumpy`` and ``callCompiled`` run one of them. The
  compiled path prepares its later calls as Elementwise's does (``hostkernel.PreparedCall``): the first call with
  an axis, a keepdims, argument types and arrays' dtypes and shapes checks everything; later calls with the same
  take one pass in C (contiguity, writable outputs, the dtype objects) and the prepared geometry. Anything else,
  an axis given as a list or a NumPy int among them, takes the full checks, which raise the same errors.
- The paths join in different orders, so floating sums agree within rounding (about ``n·eps·sum|x|`` for n
  values), not bit for bit; max, min and counts agree exactly.

The reference gets the kernel's arguments (scalars as NumPy scalars of their declared type) and ``axis`` (a
sorted tuple of non-negative axes) and ``keepdims`` as keywords, and must update its outputs in place. Every
Reduction made is listed in ``registry``.
"""

import numbers
import operator
from dataclasses import dataclass, replace

import numpy

from minidl.backend import hostkernel, reductionsource
from minidl.backend.device import cupy, isArray
from minidl.backend.devicelaunch import PreparedLaunch
from minidl.backend.elementwise import CUPY_OPTIONS, Elementwise, isCName, parseParams
from minidl.backend.livevalues import CaptureLiveError, LiveValue
from minidl.backend.tape import Recorder
from minidl.errors import BackendError

registry = []  # every Reduction made, in the order they were made


@dataclass(frozen=True)
class Plan:
    """A checked call's shape: the input shape, the reduced axes (sorted), keepdims, and per parameter its kind:
    "scalar", "full" (an input of the input's shape), "kept" (an input of the output's shape, the reduced axes
    1), "reduced" (an input of the reduced axes' shape, the kept axes 1), "out" (an output), "raw"."""

    inShape: tuple
    axes: tuple
    keepdims: bool
    kinds: tuple

    @property
    def outShape(self):
        """The outputs' shape: the input's without the reduced axes (with them as 1 under keepdims)."""
        if self.keepdims:
            return tuple(1 if axis in self.axes else side for axis, side in enumerate(self.inShape))
        return tuple(side for axis, side in enumerate(self.inShape) if axis not in self.axes)

    @property
    def reducedShape(self):
        """The shape of an input read once per reduced position: the input's, the kept axes 1."""
        return tuple(side if axis in self.axes else 1 for axis, side in enumerate(self.inShape))

    @property
    def keptShape(self):
        """The shape of an input read once per output element: the input's, the reduced axes 1."""
        return tuple(1 if axis in self.axes else side for axis, side in enumerate(self.inShape))


def normalizeAxis(axis, ndim, name):
    """``axis`` (None, an int or a sequence of ints, each in [-ndim, ndim), none twice) as a sorted tuple of
    non-negative axes; a BackendError naming ``name`` otherwise."""
    if axis is None:
        return tuple(range(ndim))
    given = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = []
    for item in given:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise BackendError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= item < ndim:
            raise BackendError(f"{name}: axis {item} is out of range for an input of {ndim} dimensions")
        axes.append(operator.index(item) % ndim)
    if len(set(axes)) != len(axes):
        raise BackendError(f"{name}: axis {axis!r} names an axis twice")
    return tuple(sorted(axes))


class Reduction:
    """A reduction with a CUDA text (run by CuPy's ReductionKernel, or compiled for the host) and a NumPy
    reference."""

    def __init__(self, name, inParams, outParams, mapExpr, reduceExpr, postMapExpr, identity, reference,
                 reduceType=None, preamble="", cpuPath="compiled"):
        if not isCName(name):
            raise BackendError(f"kernel name {name!r} must be a C identifier: it names the compiled function")
        if cpuPath not in hostkernel.CPU_KERNELS:
            raise BackendError(f"kernel {name}: cpuPath must be one of {hostkernel.CPU_KERNELS}, got {cpuPath!r}")
        for what, text in (("mapExpr", mapExpr), ("reduceExpr", reduceExpr), ("postMapExpr", postMapExpr),
                           ("identity", identity)):
            if not isinstance(text, str) or not text.strip():
                raise BackendError(f"kernel {name}: {what} must be a C expression (a non-empty string), got {text!r}")
        if reduceType is not None and (not isinstance(reduceType, str) or not reduceType.strip()):
            raise BackendError(f"kernel {name}: reduceType must be a C type (a string) or None, got {reduceType!r}")
        self.name = name
        self.cpuPath = cpuPath
        self.inParams, self.outParams = inParams, outParams
        self.mapExpr, self.reduceExpr, self.postMapExpr = mapExpr, reduceExpr, postMapExpr
        self.identity, self.reduceType, self.preamble = identity, reduceType, preamble
        self.reference = reference
        self.inputs = parseParams(inParams, isOutput=False)
        outputs = parseParams(outParams, isOutput=True)
        self.params = self.inputs + outputs
        if not outputs:
            raise BackendError(f"kernel {name} declares no output")
        if any(param.raw for param in outputs):
            raise BackendError(f"kernel {name}: an output cannot be raw: each output element is one reduction")
        if not any(not param.raw for param in self.inputs):
            raise BackendError(f"kernel {name} declares no non-raw input: the reduced input sets the shape")
        names = [param.name for param in self.params]
        if len(set(names)) != len(names):
            raise BackendError(f"kernel {name} declares a parameter name twice: {names}")
        reserved = sorted({"a", "b"} & set(names))
        if reserved:
            raise BackendError(f"kernel {name} cannot name a parameter {reserved[0]!r}: reduceExpr and postMapExpr "
                               f"name their values a and b")
        self._cupyKernel = None
        self._hostFunctions = {}
        self._prepared = {}  # a call's key (_key) -> (hostkernel.PreparedCall, the loop's size)
        self._launches = {}  # a device call's key (_key, onDevice) -> devicelaunch.PreparedLaunch
        self._outputIndices = tuple(range(len(self.inputs), len(self.params)))
        registry.append(self)

    def __repr__(self):
        return f"Reduction({self.name!r})"

    def __call__(self, *args, axis=None, keepdims=False):
        if Recorder.tape is not None and not Recorder.paused:
            return Recorder.tape.kernel(self, args, {"axis": axis, "keepdims": keepdims})
        if self._launches:
            launch = self._launches.get(self._key(args, axis, keepdims, onDevice=True))
            if launch is not None and launch(args):
                return self._outputs(args)
        compiled = hostkernel.runsCompiled(self.cpuPath)
        key = self._key(args, axis, keepdims) if compiled else None
        if key is not None and self._callPrepared(args, key):
            return self._outputs(args)
        given = args
        args, onDevice, plan = self.checkArgs(args, axis, keepdims)
        if onDevice:
            self.cupyKernel()(*args, axis=plan.axes, keepdims=plan.keepdims)
            launchKey = self._key(given, axis, keepdims, onDevice=True)
            if launchKey is not None:
                self._launches[launchKey] = PreparedLaunch(self.cupyKernel(), args, axis=plan.axes,
                                                           keepdims=plan.keepdims)
        elif compiled:
            self._runCompiled(args, plan, key, given)
        else:
            self._runReference(args, plan)
        return self._outputs(args)

    def callNumpy(self, *args, axis=None, keepdims=False):
        """Run the NumPy reference on NumPy arrays, whatever MINIDL_CPU_KERNELS says."""
        args, plan = self._checkHost(args, axis, keepdims)
        self._runReference(args, plan)
        return self._outputs(args)

    def callCompiled(self, *args, axis=None, keepdims=False):
        """Run the host-compiled CUDA text on NumPy arrays, whatever MINIDL_CPU_KERNELS says."""
        key = self._key(args, axis, keepdims)
        if key is not None and self._callPrepared(args, key):
            return self._outputs(args)
        given = args
        args, plan = self._checkHost(args, axis, keepdims)
        self._runCompiled(args, plan, key, given)
        return self._outputs(args)

    def cupyKernel(self):
        """The memoized cupy.ReductionKernel (CuPy caches one binary per dtype set and shape), compiled with
        ``CUPY_OPTIONS``: no fused multiply-adds, every product rounded as on the CPU paths."""
        if self._cupyKernel is None:
            self._cupyKernel = cupy.ReductionKernel(
                self.inParams, self.outParams, self.mapExpr, self.reduceExpr, self.postMapExpr, self.identity,
                name=self.name, reduce_type=self.reduceType, preamble=self.preamble, options=CUPY_OPTIONS,
            )
        return self._cupyKernel

    def hostFunction(self, types, kinds, ndims):
        """Compile (or take from the disk cache) the host path for one binding: ``types`` maps placeholders to
        dtypes, ``kinds`` and ``ndims`` as ``reductionsource.hostSource`` takes them."""
        return hostkernel.HostFunction(reductionsource.hostSource(self, types, kinds, ndims), self.name)

    def _runReference(self, args, plan):
        if numpy.prod(plan.outShape, dtype=numpy.int64) > 0:
            self.reference(*args, axis=plan.axes, keepdims=plan.keepdims)

    def _key(self, args, axis, keepdims, onDevice=False):
        """What a call is prepared under: its axis and keepdims, and per argument its dtype and shape (a NumPy
        array) or its type (a scalar, or any other array); with ``onDevice``, what a device launch is prepared under
        (``_launches``): each array's type, dtype and shape. None (the call takes the full checks) when the count
        of arguments is not the kernel's, or axis is not None, an int or a tuple of ints, or keepdims not a bool."""
        if (len(args) != len(self.params) or type(keepdims) is not bool
                or not (axis is None or type(axis) is int
                        or (type(axis) is tuple and all(type(item) is int for item in axis)))):
            return None
        if onDevice:
            return axis, keepdims, *[(type(arg), arg.dtype, arg.shape) if isArray(arg) else type(arg) for arg in args]
        return axis, keepdims, *[(arg.dtype, arg.shape) if type(arg) is numpy.ndarray else type(arg) for arg in args]

    def _callPrepared(self, args, key):
        """Run the compiled kernel through the call prepared under ``key``, if one was and the arguments pass its
        checks (contiguity, writable outputs, dtypes, the scalars' values fitting); False when not (nothing has
        run)."""
        entry = self._prepared.get(key)
        return entry is not None and entry[0](args, entry[1])

    def bind(self, args, axis=None, keepdims=False):
        """This call, run once already, bound for a tape's replays (``hostkernel.BoundCall``: a prepared call of
        its own); None where it does not run the compiled text on NumPy arrays or launches nothing."""
        if not hostkernel.runsCompiled(self.cpuPath) or self._key(args, axis, keepdims) is None:
            return None
        typed, onDevice, plan = self.checkArgs(args, axis, keepdims)
        outSize = int(numpy.prod(plan.outShape, dtype=numpy.int64))
        if onDevice or outSize == 0 or not hostkernel.preparable(typed):
            return None
        return hostkernel.BoundCall(self, self._preparedCall(self._compiledFor(typed, plan), typed, plan, args),
                                    outSize, {"axis": axis, "keepdims": keepdims})

    def _compiledFor(self, args, plan):
        """The host function of these (checked) arguments' binding, compiled at its first use."""
        ndims = tuple(arg.ndim if kind == "raw" else None for arg, kind in zip(args, plan.kinds))
        binding = (tuple(arg.dtype for arg in args), plan.kinds, ndims)
        function = self._hostFunctions.get(binding)
        if function is None:
            types = {param.typeName: arg.dtype for param, arg in zip(self.params, args) if param.dtype is None}
            function = self._hostFunctions[binding] = self.hostFunction(types, plan.kinds, ndims)
        return function

    def _preparedCall(self, function, args, plan, given):
        """A prepared call of ``function`` for arguments like these (checked; ``given`` as the caller passed
        them), the arrays' shapes being checked by whoever calls it (a key of them)."""
        kinds = [-2 if kind == "scalar" else arg.ndim if kind == "raw" else -3  # -3: shape in the key
                 for arg, kind in zip(args, plan.kinds)]
        return hostkernel.PreparedCall(function, self.params, given, args, kinds,
                                       reductionsource.geometry(plan.inShape, plan.axes))

    def _runCompiled(self, args, plan, key=None, given=None):
        """Run the host function of these arguments' binding (compiled on its first use); with ``key`` and
        ``given`` (``_key`` of the arguments as the caller passed them, ``args`` being them checked), prepare the
        later calls under that key (``_callPrepared``)."""
        outSize = int(numpy.prod(plan.outShape, dtype=numpy.int64))
        if outSize == 0:  # as in CuPy: nothing to launch
            return
        function = self._compiledFor(args, plan)
        rawShapes = [arg.shape for arg, kind in zip(args, plan.kinds) if kind == "raw"]
        function(outSize, args, rawShapes + [reductionsource.geometry(plan.inShape, plan.axes)])
        if key is not None and key not in self._prepared and hostkernel.preparable(args):
            self._prepared[key] = (self._preparedCall(function, args, plan, given), outSize)

    def _checkHost(self, args, axis, keepdims):
        args, onDevice, plan = self.checkArgs(args, axis, keepdims)
        if onDevice:
            raise BackendError(f"{self.name}: the CPU paths take NumPy arrays, got CuPy arrays")
        return args, plan

    # Elementwise's checks of kinds, devices and contiguity, dtypes and scalars, with the same messages, and its
    # outputs
    _checkKinds = Elementwise._checkKinds
    _checkDevice = Elementwise._checkDevice
    _bindTypes = Elementwise._bindTypes
    _typeScalars = Elementwise._typeScalars
    _typedScalar = Elementwise._typedScalar
    _outputs = Elementwise._outputs

    def checkArgs(self, args, axis=None, keepdims=False):
        """Validate the arguments, ``axis`` and ``keepdims``; return them with scalars typed, whether they live on
        the GPU, and the call's ``Plan``."""
        if len(args) != len(self.params):
            expected = ", ".join(param.name for param in self.params)
            raise BackendError(f"{self.name} takes {len(self.params)} arguments ({expected}), got {len(args)}")
        if not isinstance(keepdims, (bool, numpy.bool_)):
            raise BackendError(f"{self.name}: keepdims must be a bool, got {keepdims!r}")
        if any(isinstance(arg, LiveValue) for arg in args):  # Elementwise's checks take them: its kernels read them
            raise CaptureLiveError(f"{self.name}: a Reduction reads no live value from the device (its graph would "
                                   f"keep the number it was captured with)")
        arrays = self._checkKinds(args)
        onDevice = self._checkDevice(arrays)
        plan = self._plan(args, axis, bool(keepdims))
        return self._typeScalars(args, self._bindTypes(arrays)), onDevice, plan

    def _plan(self, args, axis, keepdims):
        """The call's Plan, once the non-raw inputs are known to share the input's shape (or have the output's,
        reduced axes 1) and the outputs to have the reduced shape."""
        inputs = [(param, arg) for param, arg in zip(self.inputs, args) if not param.raw and isArray(arg)]
        if not inputs:
            raise BackendError(f"{self.name}: no non-raw input array was passed: the reduced input sets the shape")
        try:
            inShape = tuple(numpy.broadcast_shapes(*(arg.shape for _, arg in inputs)))
        except ValueError:
            inShape = None
        axes = normalizeAxis(axis, len(inShape), self.name) if inShape is not None else ()
        plan = Plan(inShape, axes, keepdims, ())
        if inShape is None or any(arg.shape not in (inShape, plan.keptShape, plan.reducedShape)
                                  for _, arg in inputs):
            where = ", ".join(f"{param.name} {arg.shape}" for param, arg in inputs)
            raise BackendError(f"{self.name}: the non-raw inputs must have the input's shape, or it with the reduced "
                               f"axes as 1, or with the kept axes as 1 (axis={axis!r}); got {where}")
        if any(param.raw for param in self.inputs) and axes != tuple(range(len(axes))):
            raise BackendError(f"{self.name}: with raw arrays the reduced axes must be the leading ones (CuPy moves "
                               f"other axes, and refuses raw arrays then), got axis={axis!r} of {len(inShape)}")
        kinds = []
        for param, arg in zip(self.params, args):
            if not isArray(arg):
                kinds.append("scalar")
            elif param.raw:
                kinds.append("raw")
            elif param.isOutput:
                if arg.shape != plan.outShape:
                    raise BackendError(f"{self.name}: output {param.name} must have the reduced shape {plan.outShape} "
                                       f"(input {inShape}, axis={axis!r}, keepdims={keepdims}), got {arg.shape}")
                kinds.append("out")
            else:
                kinds.append("full" if arg.shape == inShape else "kept" if arg.shape == plan.keptShape else "reduced")
        return replace(plan, kinds=tuple(kinds))


hostkernel.kernelClasses["ReductionKernel"] = (Reduction, registry)
