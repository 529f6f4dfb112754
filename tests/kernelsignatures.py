"""The table of kernel signatures the suite calls, kept in tests/backend/kernel_signatures.json.

A signature is what makes CuPy generate different source for one kernel: per parameter its dtype, whether it
is an array or a scalar, its ndim as CuPy sees it (a raw array keeps its own; C-contiguous non-raw arrays are
reduced to 1-D, 0-D ones stay 0-D), and the index width of the call (32-bit while every array spans at most
2**31 bytes and the loop has at most 2**31 elements, else 64-bit). Written as, for example,
``x=float32[1] a=float32 w=float32[raw:2] y=float32[1] i32``.

A Reduction's signature names its inputs' and outputs' roles and ndims instead: ``x=float32[in:2] m=float32[in:2]
y=float32[out:1] i32``. An input (of the input's shape, or of the output's, which CuPy broadcasts) has the ndim
of the input's runs (its axes of size > 1 with neighbours of one kind merged: kept or reduced), an output 1, or 0
when every axis is reduced; CuPy merges some of those runs further, which changes the CArray's ndim but nothing
the expressions see. The width is 64-bit where an array spans more than 2**31 bytes or the input has more than
2**31 elements.

tests/conftest.py notes every signature a package kernel is called with; a call whose signature no compiled
variant of the table covers fails its test, with the command that rewrites the table (RECORD_COMMAND).
tests/backend/test_cupy_compiles.py compiles every signature of the table, crossed with the float dtypes a
user can choose and both index widths, through CuPy's own code generation. The table holds what CI's derandomized
draws reach, which another Hypothesis release would change: setup.cfg's test extra names one exact version.
"""

import json
import os
import warnings
from pathlib import Path

import hypothesis
import numpy
import pytest

from minidl.backend.elementwise import Elementwise
from minidl.backend.reduction import Reduction
from minidl.backend.reductionsource import geometry

TABLE = Path(__file__).parent / "backend" / "kernel_signatures.json"
RECORD_VARIABLE = "MINIDL_RECORD_KERNEL_SIGNATURES"
# The GPU path (the simulated device) calls some kernels the CPU never does and the other way round, so the table is
# recorded by both runs: the first rewrites it, the second adds what it saw.
RECORD_COMMAND = (f"{RECORD_VARIABLE}=1 CI=true python -m pytest -q -x && "
                  f"{RECORD_VARIABLE}=add MINIDL_BACKEND=simulated CI=true python -m pytest -q -x")
FLOATS = tuple(numpy.dtype(name) for name in ("float16", "float32", "float64"))
INDEX_32_LIMIT = 1 << 31  # CuPy: an array spanning at most this many bytes, a loop of at most this many elements


def recording():
    """True when this run records the table instead of checking calls against it: "1" rewrites it from this run's
    calls, "add" adds them to it."""
    return os.environ.get(RECORD_VARIABLE) in ("1", "add")


def signatureOf(kernel, args, size=None):
    """The signature of a validated call (``Elementwise.checkArgs``'s typed arguments and the ``size`` given
    when every array is raw), or None for a call CuPy does not launch (an empty loop compiles nothing)."""
    if size is None:
        size = next(arg for param, arg in zip(kernel.params, args)
                    if not param.raw and not isinstance(arg, numpy.generic)).size
    if size == 0:
        return None
    wide = size > INDEX_32_LIMIT
    parts = []
    for param, arg in zip(kernel.params, args):
        dtype = numpy.dtype(arg.dtype).name
        if isinstance(arg, numpy.generic):  # a scalar, typed by checkArgs
            parts.append(f"{param.name}={dtype}")
            continue
        wide = wide or arg.nbytes > INDEX_32_LIMIT
        ndim = f"raw:{arg.ndim}" if param.raw else str(min(arg.ndim, 1))
        parts.append(f"{param.name}={dtype}[{ndim}]")
    return " ".join(parts + ["i64" if wide else "i32"])


def reductionSignatureOf(kernel, args, plan):
    """The signature of a validated Reduction call (``Reduction.checkArgs``'s typed arguments and plan), or None
    for a call CuPy does not launch (an empty output)."""
    if not all(plan.outShape):
        return None
    shape = geometry(plan.inShape, plan.axes)
    keptRuns, reducedRuns = shape[3], (1 if shape[1] > 1 else 0) + shape[4 + 2 * shape[3]]
    wide = int(numpy.prod(plan.inShape, dtype=numpy.int64)) > INDEX_32_LIMIT
    parts = []
    for param, arg, kind in zip(kernel.params, args, plan.kinds):
        dtype = numpy.dtype(arg.dtype).name
        if kind == "scalar":
            parts.append(f"{param.name}={dtype}")
            continue
        wide = wide or arg.nbytes > INDEX_32_LIMIT
        ndim = {"raw": f"raw:{arg.ndim}", "out": f"out:{min(keptRuns, 1)}"}.get(kind, f"in:{keptRuns + reducedRuns}")
        parts.append(f"{param.name}={dtype}[{ndim}]")
    return " ".join(parts + ["i64" if wide else "i32"])


def parseSignature(signature):
    """``(per parameter (dtype, ndim or None for a scalar, raw), index32)`` of a signature string; for a
    Reduction's, ``raw`` is its role instead: "raw", "in" or "out" (None for a scalar)."""
    *parts, width = signature.split(" ")
    reduction = "[in:" in signature or "[out:" in signature
    params = []
    for part in parts:
        kind = part.split("=")[1]
        if "[" not in kind:
            params.append((numpy.dtype(kind), None, None if reduction else False))
            continue
        dtype, ndim = kind[:-1].split("[")
        role, _, number = ndim.rpartition(":")
        params.append((numpy.dtype(dtype), int(number), role if reduction else role == "raw"))
    return params, width == "i32"


def formatSignature(kernel, binding, index32):
    """The signature string of a binding (``parseSignature``'s inverse)."""
    parts = []
    for param, (dtype, ndim, raw) in zip(kernel.params, binding):
        if ndim is None:
            kind = ""
        elif isinstance(raw, str):
            kind = f"[{raw}:{ndim}]"
        else:
            kind = f"[raw:{ndim}]" if raw else f"[{ndim}]"
        parts.append(f"{param.name}={dtype.name}{kind}")
    return " ".join(parts + ["i32" if index32 else "i64"])


def variants(kernel, signature):
    """The bindings to compile for one recorded signature: as recorded, and with every placeholder that is bound
    to a float rebound to each float dtype in turn (so float16 parameters with float32 state stay as recorded
    and every dtype a user can choose is covered), each with 32-bit and 64-bit indices."""
    params, _ = parseSignature(signature)
    floatPlaceholders = {param.typeName for param, (dtype, _, _) in zip(kernel.params, params)
                         if param.dtype is None and dtype in FLOATS}
    bindings = {tuple(params)}
    for chosen in FLOATS:
        bindings.add(tuple((chosen if param.typeName in floatPlaceholders else dtype, ndim, raw)
                           for param, (dtype, ndim, raw) in zip(kernel.params, params)))
    return sorted(((binding, index32) for binding in bindings for index32 in (True, False)), key=repr)


def loadTable():
    """{kernel name: [signature, ...]} as kept in the repository (empty when there is no table yet)."""
    return json.loads(TABLE.read_text()) if TABLE.exists() else {}


def writeTable(signatures):
    """Rewrite the table from {kernel name: set of signatures} (with MINIDL_RECORD_KERNEL_SIGNATURES=add, joined
    to the table's own), sorted so that a diff shows what changed."""
    if os.environ.get(RECORD_VARIABLE) == "add":
        joined = {name: set(found) for name, found in loadTable().items()}
        for name, found in signatures.items():
            joined.setdefault(name, set()).update(found)
        signatures = joined
    table = {name: sorted(found) for name, found in sorted(signatures.items())}
    TABLE.write_text(json.dumps(table, indent=1) + "\n")


def drawsAreFixed():
    """Whether this run's Hypothesis profile is derandomized (CI's): the draws the table was recorded from."""
    return hypothesis.settings().derandomize


class UnrecordedSignatureWarning(UserWarning):
    """A kernel call with a signature the table lacks, in a run whose Hypothesis draws are random (the "dev"
    profile) or that runs part of the suite: CI's derandomized draws over the whole suite decide the table, so
    such a run says it and goes on. (A part draws other cases than the whole: CrossEntropy's shifted-dot property
    test run alone, or with the rest of tests/cost, draws a 3-D float32 case that the whole suite's run does not.)"""


def isWholeSuite(config):
    """Whether a pytest session runs the whole suite, as CI does: no path but the tests folder, nothing
    deselected by keyword or mark."""
    root = Path(__file__).parent.resolve()
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return all(path == root for path in paths) and not config.option.keyword and not config.option.markexpr


class Recorder:
    """Notes each package kernel's call signatures; in checking mode a call that no compiled variant of the
    table covers fails (so a dtype a random draw picks, which CI compiles anyway, is not a failure), in a
    derandomized run of the whole suite (CI's, whose draws the table records); a run of random draws or of part
    of the suite warns instead (``UnrecordedSignatureWarning``): its draws reach signatures no recording run
    made."""

    def __init__(self):
        self.wholeSuite = False  # set by tests/conftest.py once the session has collected its tests
        self.seen = {}
        self.table = {name: set(found) for name, found in loadTable().items()}
        self.covered = {}

    def isCovered(self, kernel, signature):
        if kernel.name not in self.covered:
            self.covered[kernel.name] = {formatSignature(kernel, binding, index32)
                                         for recorded in self.table.get(kernel.name, ())
                                         for binding, index32 in variants(kernel, recorded)}
        return signature in self.covered[kernel.name]

    def note(self, kernel, args, size=None, plan=None):
        """Return None, or the failure message for a call whose signature the table lacks (``plan``: a
        Reduction's)."""
        if not getattr(kernel.reference, "__module__", "").startswith("minidl."):
            return None  # the suite's own test kernels, and the simulated device's copy of a Reduction
        signature = signatureOf(kernel, args, size) if plan is None else reductionSignatureOf(kernel, args, plan)
        if signature is None:
            return None
        self.seen.setdefault(kernel.name, set()).add(signature)
        if recording() or self.isCovered(kernel, signature):
            return None
        problem = (f"kernel {kernel.name} was called with a signature missing from {TABLE.name}: {signature}\n"
                   f"CI compiles CuPy's source for every recorded signature, so record it: run the whole suite as\n"
                   f"    {RECORD_COMMAND}\n"
                   f"which rewrites {TABLE.relative_to(TABLE.parents[2])} when the run passes; commit that file.")
        if not drawsAreFixed() or not self.wholeSuite:
            warnings.warn(problem, UnrecordedSignatureWarning, stacklevel=2)
            return None
        return problem


uncheckedArgs = Elementwise.checkArgs  # the real validation, for tests that must not be recorded
uncheckedReductionArgs = Reduction.checkArgs


def install():
    """Make every Elementwise and Reduction call note its signature with a new Recorder (which it returns); a
    call whose signature the table lacks fails the test that made it."""
    recorder = Recorder()

    def checkArgsAndNote(kernel, args, size=None):
        typed, onDevice = uncheckedArgs(kernel, args, size)
        problem = recorder.note(kernel, typed, size)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        return typed, onDevice

    def checkReductionArgsAndNote(kernel, args, axis=None, keepdims=False):
        typed, onDevice, plan = uncheckedReductionArgs(kernel, args, axis, keepdims)
        problem = recorder.note(kernel, typed, plan=plan)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        return typed, onDevice, plan

    Elementwise.checkArgs = checkArgsAndNote
    Reduction.checkArgs = checkReductionArgsAndNote
    return recorder
