"""Elementwise: one operation declared in ``cupy.ElementwiseKernel`` vocabulary, runnable on both devices.

    kernel = Elementwise("minidl_axpy", inParams="T x, float32 a", outParams="T y",
                         operation="y += a * x", reference=axpyNumpy)
    kernel(x, a, y)     # cupy arrays -> the memoized cupy.ElementwiseKernel; numpy arrays -> the CPU path
    kernel(img, ..., col, size=planes)   # every array raw: the loop's size is given, as in CuPy

On NumPy arrays the CPU path is the operation's CUDA text compiled for the host (``hostkernel``) or the
NumPy reference: ``cpuPath`` ("compiled" unless the reference was measured faster), or what
``MINIDL_CPU_KERNELS`` forces; ``callNumpy`` and ``callCompiled`` run one of them whatever either says.
Every kernel made is listed in ``registry``, so tests can reach each one.

Parameters follow CuPy's rules: ``[raw] type name``, where type is a NumPy dtype name (``float32``,
``int32``, ...) or a one-letter placeholder (``T``) bound from the dtypes of the arrays passed for it.
Non-raw arrays are seen elementwise and must all have one shape (no broadcasting), which sets the loop's size;
raw arrays are indexed by the operation itself; scalars are passed by value. When every array is raw, the
call gives the loop's size (``size=``, CuPy's keyword), and only then. Outputs are updated in place and returned.

Every argument is checked before anything runs: its count, device, dtype, shape and contiguity, so a
failed call changes nothing. On the compiled path the first call of a signature (the first output's dtype and
every argument's type) checks all of it and prepares the signature's later calls (``hostkernel.PreparedCall``):
one pass over the arrays checking what can differ (dtype, ndim, shape, contiguity, writability), scalars
converted only when they are not the objects of the last call, prepared pointers to the compiled function; a
call that differs in anything takes the full checks, which raise the same errors. On CuPy arrays likewise: the
first call of a signature prepares its later launches (``devicelaunch.PreparedLaunch``: each array's dtype and
contiguity, the non-raw arrays' one shape, the scalars typed), then CuPy's own call.

The reference gets the same arguments as the kernel, scalars converted to
NumPy scalars of their declared dtype, and must update its outputs in place.
"""

import numbers
import re
from dataclasses import dataclass

import numpy

from minidl.backend import hostkernel, kernelrecord, kernelsource
from minidl.backend.device import cupy, isArray, isDeviceArray
from minidl.backend.devicelaunch import PreparedLaunch
from minidl.backend.livevalues import LiveValue
from minidl.backend.tape import Recorder
from minidl.errors import BackendError

FIXED_TYPES = {
    name: numpy.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )
}


@dataclass(frozen=True)
class Param:
    """One parameter of a kernel: its name, its type (a dtype, or a placeholder's name), raw or not."""

    name: str
    typeName: str
    raw: bool
    isOutput: bool

    @property
    def dtype(self):
        """The fixed dtype, or None for a placeholder."""
        return FIXED_TYPES.get(self.typeName)


def isCName(text):
    """True for a C identifier (ASCII letters, digits and underscores, not starting with a digit)."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) is not None


def parseParams(text, isOutput):
    """Parse ``"T x, raw int32 labels, float32 a"`` into Params by CuPy's rules: ``""`` declares nothing, any
    other text is split at every comma and each item must be ``[raw] type name`` (so ``"T x,"`` and ``" "`` are
    errors, as they are in CuPy). A type is a dtype name or a one-letter placeholder. minidl refuses a few
    things CuPy's parser lets through: dtype aliases (CuPy reads ``float`` as float64), names that are not C
    identifiers (CuPy fails at compile) and CuPy's internal ``CIndexer`` and
    ``_non_const``; tests/backend/test_parser_against_cupy.py holds this against CuPy's own parser."""
    if text == "":
        return []
    params = []
    for item in text.strip().split(","):
        words = item.split()
        if not words:
            raise BackendError(f"cannot parse kernel parameters {text!r}: an empty item (a stray comma?), "
                               f"expected '[raw] type name' between commas")
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2 or not all(isCName(word) for word in words):
            raise BackendError(f"cannot parse kernel parameter {item!r}: expected '[raw] type name'")
        if len(words[0]) != 1 and words[0] not in FIXED_TYPES:
            raise BackendError(
                f"cannot parse kernel parameter {item!r}: its type must be a dtype name ({', '.join(FIXED_TYPES)}) "
                f"or a one-letter placeholder such as T"
            )
        params.append(Param(name=words[1], typeName=words[0], raw=raw, isOutput=isOutput))
    return params


def simdSum(*names):
    """A line for an operation's text, before a loop that sums into ``names``: OpenMP's simd reduction, so the
    host compiler vectorizes the loop (summing in a few interleaved partial sums, a reordering it may not make
    by itself without -ffast-math: the BatchNorm sums ran 5x faster); NVRTC ignores the pragma."""
    return f"\n#pragma omp simd reduction(+:{', '.join(names)})\n"


CUPY_OPTIONS = ("--fmad=false",)  # no fused multiply-adds: every product rounded, as on the CPU paths

registry = []  # every Elementwise made, in the order they were made


class Elementwise:
    """An elementwise operation with a CUDA text (run by CuPy) and a NumPy reference (run on the CPU)."""

    def __init__(self, name, inParams, outParams, operation, reference, preamble="", cpuPath="compiled",
                 grain="1"):
        if not isCName(name):
            raise BackendError(f"kernel name {name!r} must be a C identifier: it names the compiled function")
        if cpuPath not in hostkernel.CPU_KERNELS:
            raise BackendError(f"kernel {name}: cpuPath must be one of {hostkernel.CPU_KERNELS}, got {cpuPath!r}")
        if not isinstance(grain, str) or not grain.strip():
            raise BackendError(f"kernel {name}: grain must be a C expression (a string), got {grain!r}")
        self.name = name
        self.cpuPath = cpuPath
        self.grain = grain  # the values one element reads or writes, a C expression of the scalar parameters
        self.inParams = inParams
        self.outParams = outParams
        self.operation = operation
        self.preamble = preamble
        self.reference = reference
        self.params = parseParams(inParams, isOutput=False) + parseParams(outParams, isOutput=True)
        if not any(param.isOutput for param in self.params):
            raise BackendError(f"kernel {name} declares no output")
        names = [param.name for param in self.params]
        if len(set(names)) != len(names):
            raise BackendError(f"kernel {name} declares a parameter name twice: {names}")
        if "i" in names:
            raise BackendError(f"kernel {name} cannot name a parameter 'i': the operation's index is i")
        self._cupyKernels = {}
        self._hostFunctions = {}
        self._prepared = {}  # a signature's key (_key) -> hostkernel.PreparedCall
        self._launches = {}  # a signature's key (_key), its arrays on the device -> devicelaunch.PreparedLaunch
        self._outputIndices = tuple(index for index, param in enumerate(self.params) if param.isOutput)
        registry.append(self)

    def __repr__(self):
        return f"Elementwise({self.name!r})"

    def __call__(self, *args, size=None):
        if Recorder.tape is not None and not Recorder.paused:
            return Recorder.tape.kernel(self, args, {"size": size})
        if kernelrecord.active:
            kernelrecord.note(self, args, size)
        if self._launches and self._launchPrepared(args, size):
            return self._outputs(args)
        compiled = hostkernel.runsCompiled(self.cpuPath)
        if compiled and self._callPrepared(args, size):
            return self._outputs(args)
        given = args
        args, onDevice = self.checkArgs(args, size)
        live = tuple(index for index, arg in enumerate(given) if isinstance(arg, LiveValue))
        if live and not onDevice:
            raise BackendError(f"{self.name}: a live value of a device graph's capture passed to a CPU kernel")
        if onDevice:
            args = [given[index].slot(arg.dtype) if index in live else arg for index, arg in enumerate(args)]
            self.cupyKernel(live)(*args, size=size)
            if not live:
                sameShape = [index for index, (param, arg) in enumerate(zip(self.params, args))
                             if not param.raw and isArray(arg)]
                raw = [index for index, param in enumerate(self.params) if param.raw]
                self._launches[self._key(given)] = PreparedLaunch(self.cupyKernel(), args, sameShape, raw)
        elif compiled:
            self._runCompiled(args, size, given)
        else:
            self.reference(*args)
        return self._outputs(args)

    def callNumpy(self, *args, size=None):
        """Run the NumPy reference on NumPy arrays, whatever MINIDL_CPU_KERNELS says."""
        args = self._checkHost(args, size)
        self.reference(*args)
        return self._outputs(args)

    def callCompiled(self, *args, size=None):
        """Run the host-compiled CUDA text on NumPy arrays, whatever MINIDL_CPU_KERNELS says."""
        if self._callPrepared(args, size):
            return self._outputs(args)
        given = args
        args = self._checkHost(args, size)
        self._runCompiled(args, size, given)
        return self._outputs(args)

    def hostFunction(self, types, ndims):
        """Compile (or take from the disk cache) the host path for one binding: ``types`` maps placeholders
        to dtypes, ``ndims`` gives per parameter None (scalar), its ndim (raw array) or 1 (non-raw array)."""
        return hostkernel.HostFunction(kernelsource.hostSource(self, types, ndims), self.name)

    def _key(self, args):
        """What a call's signature is prepared under: the first output's dtype and every argument's type (the
        prepared call checks the rest: each array's dtype, ndim and layout)."""
        return getattr(args[self._outputIndices[0]], "dtype", None), *map(type, args)

    def _callPrepared(self, args, size):
        """Run the compiled kernel through the call prepared for these arguments' signature, if one was and they
        pass its checks; False when not (nothing has run)."""
        if len(args) != len(self.params):
            return False
        prepared = self._prepared.get(self._key(args))
        return prepared is not None and prepared(args, size)

    def _launchPrepared(self, args, size):
        """Launch the CuPy kernel through the launch prepared for these arguments' signature, if one was and they
        pass its checks (``devicelaunch``); False when not (nothing has been launched). An Elementwise without
        non-raw arrays takes its loop's size, an int >= 0; one with them, none."""
        if len(args) != len(self.params):
            return False
        launch = self._launches.get(self._key(args))
        if launch is None or ((type(size) is not int or size < 0) if not launch.sameShape else size is not None):
            return False
        return launch(args, size=size)

    def bind(self, args, size=None):
        """This call, run once already, bound for a tape's replays (``hostkernel.BoundCall``: a prepared call of
        its own); None where it does not run the compiled text on NumPy arrays."""
        if not hostkernel.runsCompiled(self.cpuPath) or any(isinstance(arg, LiveValue) for arg in args):
            return None
        typed, onDevice = self.checkArgs(args, size)
        if onDevice or not hostkernel.preparable(typed):
            return None
        prepared = hostkernel.PreparedCall(self._compiledFor(typed), self.params, args, typed)
        return hostkernel.BoundCall(self, prepared, None if size is None else int(size), {"size": size})

    def hostCall(self, args, size=None):
        """(compiled function, the arguments checked and typed, the raw arrays' shapes, the loop's size) of this call
        on the CPU, for C++ that makes the call itself with some arrays replaced (``hostblas.Producer``); None where
        the kernel does not run compiled."""
        if not hostkernel.runsCompiled(self.cpuPath):
            return None
        typed = self._checkHost(args, size)
        function, rawShapes, size = self._compiledCall(typed, size)
        return function, typed, rawShapes, size

    def _compiledCall(self, args, size=None):
        """(the host function of these checked arguments' binding, compiled at its first use, the raw arrays' shapes,
        the loop's size: ``size``, or the non-raw arrays' elements)."""
        if size is None:
            size = next(arg.size for param, arg in zip(self.params, args)
                        if isinstance(arg, numpy.ndarray) and not param.raw)
        return self._compiledFor(args), [arg.shape for param, arg in zip(self.params, args) if param.raw], size

    def _compiledFor(self, args):
        """The host function of these (checked) arguments' binding, compiled at its first use."""
        ndims = [(arg.ndim if param.raw else 1) if isinstance(arg, numpy.ndarray) else None
                 for param, arg in zip(self.params, args)]
        key = tuple(zip((arg.dtype for arg in args), ndims))
        function = self._hostFunctions.get(key)
        if function is None:
            types = {param.typeName: arg.dtype for param, arg in zip(self.params, args) if param.dtype is None}
            function = self._hostFunctions[key] = self.hostFunction(types, ndims)
        return function

    def _runCompiled(self, args, size=None, given=None):
        """Run the host function of these arguments' binding (compiled on its first use) over ``size`` elements,
        or over the non-raw arrays' elements; with ``given`` (the arguments as the caller passed them, ``args``
        being them checked), prepare later calls of the same signature (``_callPrepared``)."""
        function, rawShapes, size = self._compiledCall(args, size)
        function(size, args, rawShapes)
        if given is not None and hostkernel.preparable(args):
            self._prepared[self._key(given)] = hostkernel.PreparedCall(function, self.params, given, args)

    def _checkHost(self, args, size=None):
        args, onDevice = self.checkArgs(args, size)
        if onDevice:
            raise BackendError(f"{self.name}: the CPU paths take NumPy arrays, got CuPy arrays")
        return args

    def _outputs(self, args):
        if len(self._outputIndices) == 1:
            return args[self._outputIndices[0]]
        return tuple(args[index] for index in self._outputIndices)

    def cupyKernel(self, live=()):
        """The memoized cupy.ElementwiseKernel (CuPy itself caches one compiled binary per dtype set), compiled
        with ``CUPY_OPTIONS``: no fused multiply-adds, every product rounded as on the CPU paths. ``live``: the
        indices of scalar parameters read from device memory instead (``liveVariant``)."""
        if live not in self._cupyKernels:
            inParams, operation = self.liveVariant(live) if live else (self.inParams, self.operation)
            self._cupyKernels[live] = cupy.ElementwiseKernel(
                inParams, self.outParams, operation, name=f"{self.name}_live" if live else self.name,
                preamble=self.preamble, options=CUPY_OPTIONS,
            )
        return self._cupyKernels[live]

    def liveVariant(self, live):
        """(inParams, operation) of the kernel with the scalar parameters at indices ``live`` taken as one-element
        raw arrays ``live_<name>`` (a captured graph's live values, ``minidl.backend.livevalues``), each read into a
        constant of the parameter's name before the operation, which is unchanged."""
        params = [param for param in self.params if not param.isOutput]
        declared = ", ".join(f"raw {param.typeName} live_{param.name}" if index in live else
                             f"{'raw ' if param.raw else ''}{param.typeName} {param.name}"
                             for index, param in enumerate(params))
        reads = "".join(f"const auto {params[index].name} = live_{params[index].name}[0]; " for index in live)
        return declared, reads + self.operation

    def checkArgs(self, args, size=None):
        """Validate the arguments (and ``size``, the loop's, given when every array is raw); return them with
        scalars typed, and whether they live on the GPU."""
        if len(args) != len(self.params):
            expected = ", ".join(param.name for param in self.params)
            raise BackendError(f"{self.name} takes {len(self.params)} arguments ({expected}), got {len(args)}")

        arrays = self._checkKinds(args)
        onDevice = self._checkDevice(arrays)
        self._checkShapes(arrays, size)
        return self._typeScalars(args, self._bindTypes(arrays)), onDevice

    def _typeScalars(self, args, bound):
        """The arguments with each scalar typed by its parameter's dtype, or by the dtype ``bound`` gives its
        placeholder."""
        typed = list(args)
        for index, (param, arg) in enumerate(zip(self.params, args)):
            if not isArray(arg):
                dtype = param.dtype if param.dtype is not None else bound.get(param.typeName)
                if dtype is None:
                    raise BackendError(
                        f"{self.name}: type {param.typeName} of scalar {param.name} is not bound by any array"
                    )
                typed[index] = self._typedScalar(param, dtype, arg.value if isinstance(arg, LiveValue) else arg)
        return typed

    def _typedScalar(self, param, dtype, value):
        """``value`` as a NumPy scalar of ``dtype``; one that does not fit (out of range, NaN for an int) is refused."""
        try:
            return hostkernel.scalarType(dtype)(value)
        except (OverflowError, ValueError) as error:
            raise BackendError(f"{self.name}: scalar {param.name} does not fit {dtype}: {value!r}") from error

    def _checkKinds(self, args):
        """The (param, array) pairs of the arguments, once every argument is known to be of an allowed kind."""
        arrays = []
        for param, arg in zip(self.params, args):
            if isArray(arg):
                if param.isOutput and not getattr(arg.flags, "writeable", True):  # CuPy arrays are always writable
                    raise BackendError(f"{self.name}: output {param.name} is read-only")
                arrays.append((param, arg))
                continue
            if param.raw or param.isOutput:
                kind = "raw " if param.raw else "output "
                raise BackendError(
                    f"{self.name}: {kind}argument {param.name} must be an array, got {type(arg).__name__}"
                )
            if not isinstance(arg, (numbers.Real, numpy.bool_, LiveValue)):  # NumPy's ints and floats are Reals
                raise BackendError(f"{self.name}: argument {param.name} must be an array or a scalar (a real number), "
                                   f"got {type(arg).__name__}")
        return arrays

    def _checkDevice(self, arrays):
        kinds = {isDeviceArray(arg) for _, arg in arrays}
        if len(kinds) > 1:
            where = ", ".join(f"{param.name} on {'GPU' if isDeviceArray(arg) else 'CPU'}" for param, arg in arrays)
            raise BackendError(f"{self.name}: arrays must all be on one device, got {where}")
        for param, arg in arrays:
            if not arg.flags.c_contiguous:
                raise BackendError(f"{self.name}: array {param.name} must be C-contiguous")
        return kinds == {True}

    def _checkShapes(self, arrays, size):
        shapes = {arg.shape for param, arg in arrays if not param.raw}
        if size is not None:
            if shapes:
                raise BackendError(f"{self.name}: size is given only when every array is raw (as in CuPy); the "
                                   f"non-raw arrays set the loop's size")
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 0:
                raise BackendError(f"{self.name}: size must be an int >= 0, got {size!r}")
            return
        if not shapes:
            raise BackendError(f"{self.name}: no non-raw array was passed, so the loop's size is undecided: "
                               f"give it as size=")
        if len(shapes) > 1:
            where = ", ".join(f"{param.name} {arg.shape}" for param, arg in arrays if not param.raw)
            raise BackendError(f"{self.name}: elementwise arrays must have one shape, got {where}")

    def _bindTypes(self, arrays):
        bound = {}
        for param, arg in arrays:
            dtype = numpy.dtype(arg.dtype)
            if param.dtype is not None:
                if dtype != param.dtype:
                    raise BackendError(f"{self.name}: {param.name} must be {param.dtype}, got {dtype}")
            elif bound.setdefault(param.typeName, dtype) != dtype:
                same = ", ".join(f"{p.name} {a.dtype}" for p, a in arrays if p.typeName == param.typeName)
                raise BackendError(f"{self.name}: mixed dtypes for type {param.typeName}: {same}")
        return bound


hostkernel.kernelClasses["ElementwiseKernel"] = (Elementwise, registry)
