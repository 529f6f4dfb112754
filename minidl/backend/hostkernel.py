"""The host path of Elementwise kernels: their CUDA text, made C++ by ``kernelsource``, compiled by the system
C++ compiler (``$CXX``, else ``c++``) with OpenMP and -O3, loaded with ctypes.

Libraries are cached on disk, under ``$MINIDL_CACHE_DIR`` (default ``~/.cache/minidl``), named by a hash of
the source, the compiler, its flags and what -march=native means here (the compiler's predefined macros,
which name the CPU's instruction sets): a kernel compiles once per machine, not once per process. Native
code matters: div and sqrt make AdaGrad compute-bound in SSE2 on one core, memory-bound in AVX2.

``MINIDL_CPU_KERNELS=numpy|compiled`` chooses what runs every Elementwise kernel on NumPy arrays: its NumPy
reference, or this path. Unset, each kernel runs its ``cpuPath``: this path, except for the few kernels
whose references were measured faster (gathers that NumPy does as a few slice copies, where the CUDA text
divides to decode every index); with no compiler, the references, after one logged warning.
"""

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy

from minidl.errors import BackendError

# -fno-trapping-math: no kernel relies on floating-point traps (CUDA has none), and without it g++ may not compute
# both sides of a select such as "x > 0 ? grad : alpha * grad" (the multiply could trap), so the loop stays scalar
# and branchy: leakyRelu's derivative took 19 ms on 1M values instead of 0.34 ms, one thread, measured here.
# -ffp-contract=off: each product is rounded before it is added, as the NumPy reference and the CuPy kernels
# (--fmad=false) do; g++ would fuse "a * b + c" into one FMA, whose single rounding turns an underflowing product's
# -0.0 + 0.0 into -0.0 (NumPy: +0.0) and moves other results by an ulp.
# -fopenmp-simd: OpenMP's simd pragmas (simdSum) without its runtime; the loops run on minidl's own threads
# (hostthreads.cpp, see threadPool).
FLAGS = ("-x", "c++", "-std=c++17", "-O3", "-march=native", "-fopenmp-simd", "-pthread", "-fno-math-errno",
         "-fno-trapping-math", "-ffp-contract=off", "-fPIC", "-shared")
THREADS_SOURCE = Path(__file__).with_name("hostthreads.cpp")
# How long an idle pool thread spins before it sleeps (hostthreads.cpp), in microseconds. A step's loops and products
# come microseconds apart; with threads that slept at once, the digits MLP's captured step took 1.22-1.27 ms against
# 0.61-0.66 with 300-1000 µs of spin (its products split among the threads), the residual CNN's 30.6-33.1 against
# 25-27.5 (2-core VM).
SPIN_MICROS = 500
# The values a loop reads or writes (its size times its kernel's grain) from which it is shared among the threads,
# with threads that spin and with threads that sleep at once (OMP_WAIT_POLICY=passive): below, handing ranges out
# costs more than the threads save. Threads that sleep took about 0.1 ms to wake on the 2-core VM; the caller no
# longer waits for them (it takes the ranges they have not reached), but still pays the system call that wakes them.
PARALLEL_FROM = {"spinning": 1 << 14, "sleeping": 1 << 18}
CALL_SOURCE = Path(__file__).with_name("hostcall.cpp")
VECTORS_HEADER = Path(__file__).with_name("hostvectors.h")
CPU_KERNELS = ("numpy", "compiled")
# The classes that compile a kernel's text for the host, with their registries, by CuPy's kind
# ("ElementwiseKernel", "ReductionKernel"): Elementwise and Reduction enter themselves when they are defined. The
# simulated device runs its CuPy kernels through them, and finds them here because it sits below them (they call
# it as they would call CuPy).
kernelClasses = {}

log = logging.getLogger("minidl")


def findCompiler():
    """The path of the C++ compiler ($CXX, else c++), or None when there is none."""
    return shutil.which(os.environ.get("CXX") or "c++")


def chooseCpuKernels(setting, compiler):
    """"numpy", "compiled" or "preferred" (each kernel's ``cpuPath``) from MINIDL_CPU_KERNELS's value and the
    compiler found (None: none)."""
    setting = setting.strip().lower()
    if setting not in ("", *CPU_KERNELS):
        raise BackendError(f"MINIDL_CPU_KERNELS must be 'numpy' or 'compiled', got {setting!r}")
    if setting == "numpy":
        return "numpy"
    if compiler is None:
        reason = f"no C++ compiler ({os.environ.get('CXX') or 'c++'}) is on the PATH"
        if setting == "compiled":
            raise BackendError(f"MINIDL_CPU_KERNELS=compiled, but {reason}")
        log.warning("minidl: %s; CPU kernels run their NumPy references instead", reason)
        return "numpy"
    return setting or "preferred"


@functools.cache
def cpuKernels():
    """What runs Elementwise kernels on NumPy arrays in this process: "numpy", "compiled" or "preferred"
    (read once)."""
    return chooseCpuKernels(os.environ.get("MINIDL_CPU_KERNELS", ""), findCompiler())


def runsCompiled(cpuPath):
    """Whether a kernel whose ``cpuPath`` is this runs its compiled text on NumPy arrays in this process."""
    return cpuKernels() == "compiled" or (cpuKernels() == "preferred" and cpuPath == "compiled")


def preparable(args):
    """Whether a prepared call (``PreparedCall``) can take these checked kernel arguments: its arrays are plain NumPy
    arrays."""
    return all(type(arg) is numpy.ndarray for arg in args if not isinstance(arg, numpy.generic))


def scalarType(dtype):
    """What types a kernel's scalar argument as ``dtype``: the dtype's own type, through a Python int for an integer
    dtype, so that a number that does not fit raises (OverflowError; ValueError for NaN) whether it comes as a Python
    number or as a NumPy one, which NumPy's own cast wraps modulo 2^n (and NaN to the lowest integer) in silence."""
    dtype = numpy.dtype(dtype)
    return functools.partial(_integer, dtype.type) if dtype.kind in "iu" else dtype.type


def _integer(kind, value):
    return kind(int(value))


def cacheDir():
    return Path(os.environ.get("MINIDL_CACHE_DIR") or Path.home() / ".cache" / "minidl") / "hostkernels"


@functools.cache
def _compilerIdentity(compiler):
    """The compiler's path, version, flags and predefined macros under -march=native."""
    def run(*args):
        result = subprocess.run([compiler, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise BackendError(f"the C++ compiler failed: $ {compiler} {' '.join(args)}\n{result.stderr}")
        return result.stdout

    macros = run("-march=native", "-dM", "-E", "-x", "c++", os.devnull)
    return f"{compiler}\n{run('--version')}\n{' '.join(FLAGS)}\n{macros}"


def numbered(source):
    """The source with its line numbers, the ones compiler messages cite."""
    return "".join(f"{number:5d}  {line}\n" for number, line in enumerate(source.splitlines(), 1))


@functools.cache
def announceCompiling():
    """Say once per process, on stderr, why the first steps are slow: a kernel is being compiled."""
    print(f"minidl: compiling CPU kernels, first run only (cached in {cacheDir()})", file=sys.stderr, flush=True)


def compileLibrary(source, name, rebuild=False):
    """The path of the shared library built from ``source`` (built now unless the cache holds it, or
    ``rebuild`` says that what it holds is damaged)."""
    compiler = findCompiler()
    if compiler is None:
        raise BackendError(f"{name}: no C++ compiler ({os.environ.get('CXX') or 'c++'}) is on the PATH")
    digest = hashlib.sha256(f"{_compilerIdentity(compiler)}\n{source}".encode()).hexdigest()[:24]
    library = cacheDir() / f"{name}-{digest}.so"
    if library.exists() and not rebuild:
        return library
    announceCompiling()
    try:
        library.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=library.parent) as work:
            sourceFile, built = Path(work) / f"{name}.cpp", Path(work) / library.name
            sourceFile.write_text(source)
            command = [compiler, *FLAGS, str(sourceFile), "-o", str(built)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise BackendError(
                    f"{name}: the C++ compiler rejected the kernel's host source (line numbers below are the "
                    f"source's)\n$ {' '.join(command)}\n{result.stderr}\nsource:\n{numbered(source)}"
                )
            with open(built, "rb") as written:  # on disk before the rename, so a crash cannot leave it empty
                os.fsync(written.fileno())
            os.replace(built, library)  # atomic: a process beside this one sees the whole library or none
    except OSError as error:
        raise BackendError(
            f"{name}: cannot build the kernel's library in {library.parent} ({error}); set MINIDL_CACHE_DIR to "
            f"a writable directory, or MINIDL_CPU_KERNELS=numpy"
        ) from error
    return library


def threadCount(setting):
    """The threads of a kernel's parallel loop from OMP_NUM_THREADS's value (its first number, as OpenMP reads
    it; '' for unset: one per core this process may run on)."""
    if not setting.strip():
        return len(os.sched_getaffinity(0))
    first = setting.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise BackendError(f"OMP_NUM_THREADS must be a number of threads >= 1, got {setting!r}")
    return int(first)


def loadLibrary(source, name, mode=ctypes.DEFAULT_MODE):
    """The library built from ``source``, loaded with ctypes (dlopen's ``mode``)."""
    try:
        return ctypes.CDLL(str(compileLibrary(source, name)), mode=mode)
    except OSError:  # a damaged library in the cache (cut short by a crash, say): build it once more
        library = compileLibrary(source, name, rebuild=True)
        try:
            return ctypes.CDLL(str(library), mode=mode)
        except OSError as error:
            raise BackendError(f"{name}: cannot load the compiled kernel {library}: {error}") from error


class NumberedCall:
    """One geometry's call of a function of minidl's own C++ that takes (the real's width in bytes, the address of
    its int64 numbers, then arrays' addresses): the numbers fixed once, kept alive by the call. A subclass names the
    call (``__name__``, in a tape's listings) and passes its arrays in ``__call__``."""

    def __init__(self, function, dtype, numbers):
        self.function = function
        self.real = numpy.dtype(dtype).itemsize
        self.numbers = numpy.array(numbers, dtype=numpy.int64)
        self.numbersAt = self.numbers.ctypes.data

    def __repr__(self):
        return f"{type(self).__name__}({self.numbers.tolist()})"


def loadVectorLibrary(source, name):
    """The library of one of minidl's own vectorized C++ sources (``source``, a path), ``hostvectors.h`` put before
    its text, built and loaded after the pool's (``threadPool``), whose loop it calls."""
    threadPool()
    return loadLibrary(f"{VECTORS_HEADER.read_text()}\n{Path(source).read_text()}", name)


@functools.cache
def poolThreads():
    """The threads of minidl's pool, the caller's included: OMP_NUM_THREADS's (``threadCount``), read once."""
    return threadCount(os.environ.get("OMP_NUM_THREADS", ""))


def spinMicros(policy):
    """How long an idle thread of the pool spins before it sleeps, from OMP_WAIT_POLICY's value: ``SPIN_MICROS``,
    or none for "passive" (as OpenMP reads it, any case); any other value ("active" included) keeps the bound, so
    a thread never spins for good."""
    return 0 if policy.strip().lower() == "passive" else SPIN_MICROS


def parallelFrom(spin):
    """The values from which a loop is shared among the pool's threads, whose idle threads spin ``spin`` µs."""
    return PARALLEL_FROM["spinning" if spin > 0 else "sleeping"]


@functools.cache
def threadPool():
    """Load minidl's thread pool (``hostthreads.cpp``) once per process, before any kernel, whose parallel loops
    call it. Its idle threads spin for ``spinMicros`` (a step's next loop comes microseconds later), then sleep,
    whichever OpenMP runtime the process loaded (PyTorch brings one whose threads spin long: bound to it, minidl's
    residual-CNN step ran 3x slower with torch imported). OMP_NUM_THREADS sets its threads. A forked child starts
    a pool of its own."""
    library = loadLibrary(THREADS_SOURCE.read_text(), "minidl_threads", mode=ctypes.RTLD_GLOBAL)
    library.minidl_start_threads.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_ssize_t]
    library.minidl_start_threads.restype = None
    spin = spinMicros(os.environ.get("OMP_WAIT_POLICY", ""))
    start = functools.partial(library.minidl_start_threads, poolThreads(), spin, parallelFrom(spin))
    start()
    os.register_at_fork(after_in_child=start)
    return library


class HostFunction:
    """A compiled kernel: ``function(size, args, rawShapes)`` runs it over ``size`` elements."""

    def __init__(self, source, name):
        threadPool()
        self.library = loadLibrary(source, name)
        self.function = getattr(self.library, name)
        self.function.argtypes = [ctypes.c_ssize_t, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
        self.function.restype = None

    def __call__(self, size, args, rawShapes):
        """``args``: NumPy arrays and NumPy scalars in parameter order; ``rawShapes``: the raw arrays' shapes."""
        _, addresses = self.arguments(args)
        sides = [side for shape in rawShapes for side in shape]
        self.function(size, addresses, (ctypes.c_ssize_t * len(sides))(*sides) if sides else None)

    @staticmethod
    def arguments(args):
        """(the scalars' buffer, the arguments' addresses) of ``args`` as the compiled function reads them: the
        scalars travel in one buffer, 8 bytes apart (each aligned for its type), which must outlive the call; a
        writable array's address comes from ctypes' buffer view, 4x faster than ``.ctypes.data`` (a kernel call of
        17 scalars and 2 arrays spent 40 µs here, one per scalar buffer and array pointer)."""
        scalars = [arg for arg in args if isinstance(arg, numpy.generic)]
        packed = ctypes.create_string_buffer(b"".join(arg.tobytes().ljust(8, b"\0") for arg in scalars) or b"\0")
        base, slot, addresses = ctypes.addressof(packed), 0, []
        for arg in args:
            if isinstance(arg, numpy.generic):
                addresses.append(base + 8 * slot)
                slot += 1
            elif arg.flags.writeable and arg.size:
                addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(arg)))
            else:
                addresses.append(arg.ctypes.data)
        return packed, (ctypes.c_void_p * len(args))(*addresses)


def _layout():
    """The offsets minidl_call reads: a tuple's first item, and an ndarray's data, ndim, shape, dtype and flags
    (NumPy's PyArrayObject_fields after CPython's object header), or None when they do not give NumPy's own
    answers for a probe array."""
    head = object.__basicsize__
    offsets = (tuple.__basicsize__, head, head + 8, head + 16, head + 40, head + 48)
    probe = numpy.zeros((2, 3), numpy.float32)
    pack = (probe,)

    def read(address, ctype):
        return ctype.from_address(address).value

    shape = read(id(probe) + offsets[3], ctypes.c_void_p)
    agrees = (read(id(pack) + offsets[0], ctypes.c_void_p) == id(probe)
              and read(id(probe) + offsets[1], ctypes.c_void_p) == probe.ctypes.data
              and read(id(probe) + offsets[2], ctypes.c_int) == 2
              and shape is not None and tuple((ctypes.c_ssize_t * 2).from_address(shape)) == (2, 3)
              and read(id(probe) + offsets[4], ctypes.c_void_p) == id(probe.dtype)
              and read(id(probe) + offsets[5], ctypes.c_int) & 0x401 == 0x401)
    return offsets if agrees else None


@functools.cache
def _dataOffset():
    """Where an ndarray keeps its data address (``_layout``'s), or None where NumPy lays arrays out otherwise."""
    offsets = _layout()
    return None if offsets is None else offsets[1]


def address(array):
    """``array.ctypes.data`` of an ndarray (None for None), read where NumPy keeps it when ``_layout`` agrees: 0.19
    µs against 0.89 (a direct convolution of one 8x8 image spent 3.6 µs of its 5.3 on its four arrays' addresses)."""
    if array is None:
        return None
    offset = _dataOffset()
    if offset is None or type(array) is not numpy.ndarray:
        return array.ctypes.data
    return ctypes.c_void_p.from_address(id(array) + offset).value


@functools.cache
def caller():
    """``minidl_call`` (``hostcall.cpp``), told where CPython and NumPy keep what it reads; None, said once, where
    they keep it elsewhere (every call then takes the full checks)."""
    offsets = _layout()
    if offsets is None:
        log.warning("minidl: this Python or NumPy lays out tuples or arrays as minidl does not expect; kernel "
                    "calls take the full checks every time")
        return None
    library = loadLibrary(CALL_SOURCE.read_text(), "minidl_call")
    library.minidl_layout(*(ctypes.c_ssize_t(offset) for offset in offsets))
    call = library.minidl_call
    call.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_ssize_t]
    call.restype = ctypes.c_int
    return call


class Binding(ctypes.Structure):
    """hostcall.cpp's Binding."""

    _fields_ = [("kernel", ctypes.c_void_p), ("count", ctypes.c_int), ("kinds", ctypes.POINTER(ctypes.c_int)),
                ("outputs", ctypes.POINTER(ctypes.c_int)), ("descrs", ctypes.POINTER(ctypes.c_void_p)),
                ("zeroD", ctypes.c_int), ("slots", ctypes.POINTER(ctypes.c_void_p)),
                ("rawShapes", ctypes.POINTER(ctypes.c_ssize_t))]


class PreparedCall:
    """A compiled kernel's calls with one signature, prepared at the first (whose arguments were fully checked):
    the pointer array the kernel gets, with a slot per scalar; the dtype, kind and ndim each array must have.
    ``prepared(args, size)`` runs the kernel and returns True, or returns False having run nothing when an
    argument differs in anything (the caller then takes the full checks, which say what); per call it converts
    only the scalars that are not the objects of the last call, and minidl_call checks the arrays in one pass."""

    def __init__(self, function, params, given, typed, kinds=None, tail=()):
        """``kinds`` per parameter as hostcall.cpp's Binding reads them (by default: -2 a scalar, a raw array's
        ndim, -1 a non-raw array); ``tail``, numbers the kernel reads after the raw arrays' shapes (a Reduction's
        geometry)."""
        count = len(params)
        if kinds is None:
            kinds = [-2 if isinstance(arg, numpy.generic) else (arg.ndim if param.raw else -1)
                     for param, arg in zip(params, typed)]
        self.scalarBuffer = (ctypes.c_char * (8 * count))()
        self.slots = (ctypes.c_void_p * count)()
        self.scalars, self.last = [], [arg if kind == -2 else None for arg, kind in zip(given, kinds)]
        for index, (arg, kind) in enumerate(zip(typed, kinds)):
            if kind == -2:
                view = numpy.frombuffer(self.scalarBuffer, arg.dtype, count=1, offset=8 * index)
                view[0] = arg
                self.slots[index] = ctypes.addressof(self.scalarBuffer) + 8 * index
                self.scalars.append((index, view, scalarType(arg.dtype)))
        self.kinds = (ctypes.c_int * count)(*kinds)
        self.outputs = (ctypes.c_int * count)(*(int(param.isOutput) for param in params))
        self.descrs = (ctypes.c_void_p * count)(*(None if kind == -2 else id(arg.dtype)
                                                  for arg, kind in zip(typed, kinds)))
        self.dtypes = [arg.dtype for arg in typed]  # alive as long as the ids above are compared
        rawSides = sum(kind for kind in kinds if kind > 0)
        self.rawShapes = (ctypes.c_ssize_t * max(1, rawSides + len(tail)))()
        self.rawShapes[rawSides:rawSides + len(tail)] = list(tail)
        zeroD = any(kind == -1 and arg.ndim == 0 for arg, kind in zip(typed, kinds))
        self.binding = Binding(ctypes.cast(function.function, ctypes.c_void_p), count, self.kinds, self.outputs,
                               self.descrs, zeroD, self.slots, self.rawShapes)
        self.address = ctypes.addressof(self.binding)
        self.sized = -1 not in kinds  # every array raw: the call gives the loop's size
        self.function, self.call = function, caller()
        self.busy = False  # another Python thread's call is on these slots (ctypes lets threads call at once)

    def __call__(self, args, size):
        if self.busy or self.call is None or (type(size) is not int if self.sized else size is not None):
            return False
        self.busy = True
        try:
            last = self.last
            for index, view, scalar in self.scalars:
                value = args[index]
                if value is not last[index]:
                    view[0] = scalar(value)
                    last[index] = value
            return self.call(self.address, args, size or 0) == 0
        except (OverflowError, ValueError, ctypes.ArgumentError):  # a scalar that does not fit, a size too large
            return False
        finally:
            self.busy = False


class BoundCall:
    """One recorded call of a compiled kernel, replayed through a prepared call of its own (a tape's replay,
    ``minidl.backend.tape``): its arrays are the recorded ones and its scalars the recorded numbers, already in
    the prepared call's buffer, unless the tape puts live ones in their place (``readsLiveScalars``: they are
    converted at each call). A replayed call is then one pass in C (``minidl_call``) and the kernel, without the
    kernel's Python checks or the sharing of its signature's prepared call with calls of other scalars. Where
    that pass refuses (an argument the replay changed so that it differs), the kernel's own call runs, which
    checks everything and names what is wrong. It keeps the call's keywords (``kwargs``: the kernel's ``size``,
    or ``axis`` and ``keepdims``) itself, so a replay passes the arguments only."""

    def __init__(self, kernel, prepared, size, kwargs):
        self.kernel, self.prepared, self.size, self.kwargs = kernel, prepared, size, kwargs
        self.liveScalars = prepared.call is None  # without minidl_call, every call takes the prepared call's way

    def __repr__(self):
        return repr(self.kernel)

    @property
    def name(self):
        return self.kernel.name

    def readsLiveScalars(self):
        """The tape replaces some of this call's scalars at each replay: convert them at each call."""
        self.liveScalars = True

    def __call__(self, *args):
        if self.liveScalars:
            ran = self.prepared(args, self.size)
        else:
            ran = self.prepared.call(self.prepared.address, args, self.size or 0) == 0
        if not ran:
            return self.kernel(*args, **self.kwargs)
        return None
