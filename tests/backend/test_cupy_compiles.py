"""Every kernel compiles for the GPU from the source CuPy itself generates, in every signature the suite calls
it with (tests/backend/kernel_signatures.json), crossed with the float dtypes a user can choose and both
index widths (tests/kernelsignatures.py), without a GPU.

CuPy's own pipeline runs: cupy.ElementwiseKernel parses the declaration, CuPy's code generator writes the
source for the binding (the argument infos and type map a call on the device would make), and CuPy's
compile_with_cache compiles it with CuPy's headers and options through NVRTC for sm_90 (a current GPU). Only
what needs a device stands in: the architecture option (sm_90 instead of the device's) and the final load of
the finished cubin. CuPy's disk cache (keyed by source, options and NVRTC version) makes repeated runs fast.

Reductions likewise: cupy.ReductionKernel's own code generator writes the source of a recorded binding (its
inputs, outputs, the input and output indexers and the block stride, with CuPy's default 512 threads per block),
and NVRTC compiles it.

This replaces the nvcc compile of minidl's imitation of CuPy's source, which could drift from what CuPy
really generates (other CArray and indexer types, another float16, a single dtype for every placeholder).
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from minidl.backend.elementwise import CUPY_OPTIONS
from minidl.testing import packageKernels, packageReductions
from tests import kernelsignatures
from tests.optional import importCupy

cupy = importCupy(needNvrtc=True)  # skips where CuPy or NVRTC is missing, fails in .ci/run
# A run that records the table skips the tests, not the module: a module skipped at import leaves sys.modules, and
# Hypothesis draws from the constants of the project's loaded modules, so the recording run would draw other cases
# (other signatures) than the run that checks them.
pytestmark = pytest.mark.skipif(kernelsignatures.recording(),
                                reason="this run records the signature table; the next run compiles it")

from cupy._core import _carray, _kernel, _reduction, _scalar, core  # noqa: E402 - only once CuPy is known to import
from cupy.cuda import compiler  # noqa: E402

ARCH = "90"  # H100 class: a current GPU, within NVRTC 12.x and 13.x
KERNELS = {kernel.name: kernel for kernel in packageKernels()}
REDUCTIONS = {kernel.name: kernel for kernel in packageReductions()}
ALL = {**KERNELS, **REDUCTIONS}
BLOCK_SIZE = 512  # CuPy's threads per block of a reduction on CUDA
TABLE = kernelsignatures.loadTable()
ARG_NDARRAY, ARG_INDEXER, ARG_SCALAR = 1, 2, 3  # CuPy's _ArgKind values (checked by a test below)


def argInfos(binding, index32):
    """The argument infos CuPy makes for a call with this binding: C-contiguous arrays of the recorded ndim,
    typed scalars, and the loop's indexer (1-D when every array is raw and the call gives its size), all with
    the same index width."""
    infos = [_kernel._ArgInfo(ARG_SCALAR, _scalar.CScalar, dtype, 0, True, True) if ndim is None
             else _kernel._ArgInfo(ARG_NDARRAY, cupy.ndarray, dtype, ndim, True, index32)
             for dtype, ndim, raw in binding]
    loopNdim = next((ndim for (dtype, ndim, raw) in binding if ndim is not None and not raw), 1)
    return tuple(infos + [_kernel._ArgInfo(ARG_INDEXER, _carray.Indexer, None, loopNdim, True, index32)])


def cupySource(kernel, binding, index32):
    """The CUDA source CuPy generates for a call of ``kernel`` (a minidl Elementwise) with this binding."""
    cupyKernel = cupy.ElementwiseKernel(kernel.inParams, kernel.outParams, kernel.operation, name=kernel.name,
                                        preamble=kernel.preamble)  # as Elementwise.cupyKernel makes it
    types = {param.typeName: dtype for param, (dtype, _, _) in zip(kernel.params, binding) if param.dtype is None}
    typeMap = _kernel._TypeMap(tuple(sorted(types.items())))
    return _kernel._get_elementwise_kernel_code(argInfos(binding, index32), typeMap, cupyKernel.params,
                                                cupyKernel.operation, cupyKernel.name, cupyKernel.preamble)


def reductionArgInfos(binding, index32):
    """The argument infos CuPy makes for a reduction with this binding: its arrays (inputs of the input's ndim,
    outputs of the output's), typed scalars, the input and output indexers and the int32 block stride."""
    infos = [_kernel._ArgInfo(ARG_SCALAR, _scalar.CScalar, dtype, 0, True, True) if ndim is None
             else _kernel._ArgInfo(ARG_NDARRAY, cupy.ndarray, dtype, ndim, ndim <= 1, index32)
             for dtype, ndim, role in binding]
    inNdim = next(ndim for dtype, ndim, role in binding if role == "in")
    outNdim = next(ndim for dtype, ndim, role in binding if role == "out")
    indexers = [_kernel._ArgInfo(ARG_INDEXER, _carray.Indexer, None, ndim, True, index32) for ndim in (inNdim, outNdim)]
    return tuple(infos + indexers + [_kernel._ArgInfo(ARG_SCALAR, _scalar.CScalar, numpy.dtype(numpy.int32), 0, True,
                                                      True)])


def reductionSource(kernel, binding, index32):
    """The CUDA source CuPy generates for a call of ``kernel`` (a minidl Reduction) with this binding."""
    cupyKernel = cupy.ReductionKernel(kernel.inParams, kernel.outParams, kernel.mapExpr, kernel.reduceExpr,
                                      kernel.postMapExpr, kernel.identity, name=kernel.name,
                                      reduce_type=kernel.reduceType, preamble=kernel.preamble)
    types = {param.typeName: dtype for param, (dtype, _, _) in zip(kernel.params, binding) if param.dtype is None}
    typeMap = _kernel._TypeMap(tuple(sorted(types.items())) + (("IndexT", "int32" if index32 else "int64"),))
    return _reduction._ReductionKernel_get_cached_function_code(
        cupyKernel.nin, cupyKernel.nout, cupyKernel._params, reductionArgInfos(binding, index32), typeMap,
        kernel.name, BLOCK_SIZE, cupyKernel.reduce_type, cupyKernel.identity, cupyKernel.map_expr,
        cupyKernel.reduce_expr, cupyKernel.post_map_expr, cupyKernel.preamble, CUPY_OPTIONS)


def sourceOf(kernel, binding, index32):
    return (reductionSource if kernel.name in REDUCTIONS else cupySource)(kernel, binding, index32)


class CubinModule(cupy.cuda.function.Module):
    """Stands in for loading the compiled module onto a device: keeps the cubin instead."""

    def load(self, cubin):
        self.cubin = cubin

    def _set_mapping(self, mapping):
        pass


@contextlib.contextmanager
def compilingWithoutDevice():
    """Inside the block CuPy compiles for sm_{ARCH} and keeps the cubin instead of loading it onto a device: the two
    stand-ins for what needs a GPU."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiler, "_get_arch_for_options_for_nvrtc", lambda arch=None: (f"-arch=sm_{ARCH}", "cubin"))
        patch.setattr(compiler, "function", type("Function", (), {"Module": CubinModule}))
        yield


def describe(binding, index32):
    return " ".join(f"{dtype.name}{'' if ndim is None else f'[{ndim}]'}" for dtype, ndim, _ in binding) + \
        (" i32" if index32 else " i64")


@pytest.fixture(scope="module")
def compileErrors():
    """Compile every variant of every recorded signature on every core; return the errors per kernel name."""
    jobs = {(name, binding, index32) for name, signatures in TABLE.items() if name in ALL
            for signature in signatures for binding, index32 in kernelsignatures.variants(ALL[name], signature)}
    jobs = [(ALL[name], binding, index32) for name, binding, index32 in sorted(jobs, key=repr)]

    def build(kernel, binding, index32):
        try:
            module = core.compile_with_cache(sourceOf(kernel, binding, index32), CUPY_OPTIONS, ARCH)
            assert len(module.cubin) > 0
        except Exception as error:  # CompileException with NVRTC's log
            return kernel.name, f"[{describe(binding, index32)}] {type(error).__name__}: {error}"

    with compilingWithoutDevice():
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            failures = [failure for failure in pool.map(build, *zip(*jobs)) if failure]
    errors = {}
    for name, error in failures:
        errors.setdefault(name, []).append(error)
    return errors


@pytest.mark.parametrize("name", sorted(ALL))
def test_compiles_from_cupys_source_in_every_recorded_signature(name, compileErrors):
    assert TABLE.get(name), f"{name} has no recorded signature: run {kernelsignatures.RECORD_COMMAND}"
    if name in compileErrors:
        pytest.fail("\n\n".join(compileErrors[name]), pytrace=False)


def test_the_table_names_only_kernels_that_exist():
    stale = sorted(set(TABLE) - set(ALL))
    assert not stale, f"the signature table names kernels that no longer exist: {stale}; run " \
        f"{kernelsignatures.RECORD_COMMAND}"


def test_the_generated_source_is_cupys_for_the_binding():
    """The stand-in argument infos give the types a real call gives: CuPy's CArray with ndim, contiguity and
    index width, plain scalars, the indexer, and one typedef per placeholder (float16 T with float32 S)."""
    kernel = KERNELS["minidl_adam"]
    signature = next(sig for sig in TABLE["minidl_adam"] if "scaledGrad=float16[1]" in sig and "m=float32[1]" in sig)
    binding, _ = kernelsignatures.parseSignature(signature)
    source = cupySource(kernel, binding, index32=False)
    assert "typedef float16 T;" in source
    assert "typedef float S;" in source
    assert "const CArray<float16, 1, 1, 0> _raw_scaledGrad" in source
    assert "const double learnRate" in source and "CIndexer<1, 0> _ind" in source
    im2col = next(sig for sig in TABLE["minidl_im2col"] if "img=float32[raw:4]" in sig)
    raw = cupySource(KERNELS["minidl_im2col"], kernelsignatures.parseSignature(im2col)[0], True)
    assert "const CArray<float, 4, 1, 1> img" in raw


def test_a_source_with_an_error_fails_to_compile():
    """The stand-ins do not hide compile errors: NVRTC still reports them."""
    kernel = KERNELS["minidl_relu"]
    binding, _ = kernelsignatures.parseSignature(TABLE["minidl_relu"][0])
    broken = cupySource(kernel, binding, True).replace("y = ", "y = undeclared_name + ")
    with compilingWithoutDevice():
        with pytest.raises(compiler.CompileException, match="undeclared_name"):
            core.compile_with_cache(broken, (), ARCH)


def test_float16_with_float32_state_is_among_the_compiled_variants():
    kernel = KERNELS["minidl_adam"]
    compiled = {tuple(dtype.name for dtype, _, _ in binding)
                for signature in TABLE["minidl_adam"] for binding, _ in kernelsignatures.variants(kernel, signature)}
    names = [param.name for param in kernel.params]
    mixed = [binding for binding in compiled if binding[names.index("param")] == "float16"
             and binding[names.index("m")] == "float32"]
    assert mixed, "float16 parameters with float32 state"
    for chosen in ("float16", "float32", "float64"):
        assert any(binding[names.index("param")] == binding[names.index("m")] == chosen for binding in compiled)
    assert numpy.dtype("float16") in kernelsignatures.FLOATS


def test_a_reductions_generated_source_is_cupys_and_compiles():
    """A Reduction (here one of the tests') through CuPy's reduction code generator: its REDUCE and POST_MAP
    macros, the reduce type, an input of the output's shape read through the input indexer, and NVRTC's cubin."""
    from minidl.backend import Reduction

    kernel = Reduction("test_sum_about", "T x, T centre, float32 scale", "T y", "(x - centre) * (x - centre)",
                       "a + b", "y = scale * a", "0", reference=None, reduceType="float")
    binding, _ = kernelsignatures.parseSignature(
        "x=float16[in:2] centre=float16[in:2] scale=float32 y=float16[out:1] i32")
    source = reductionSource(kernel, binding, True)
    assert "#define REDUCE(a, b) (a + b)" in source and "typedef float _type_reduce;" in source
    assert "typedef float16 T;" in source and "const T centre = _raw_centre[_in_ind.get()];" in source
    with compilingWithoutDevice():
        assert len(core.compile_with_cache(source, CUPY_OPTIONS, ARCH).cubin) > 0
        with pytest.raises(compiler.CompileException, match="undeclared_name"):
            core.compile_with_cache(source.replace("(a + b)", "(a + undeclared_name)"), CUPY_OPTIONS, ARCH)


def liveVariants():
    """(kernel, the indices of its scalar parameters) of each package kernel that takes a scalar in its first recorded
    signature: what its live variant (a captured graph's numbers read from device memory, ``Elementwise.liveVariant``)
    is compiled for."""
    for name, kernel in sorted(KERNELS.items()):
        binding = kernelsignatures.parseSignature(TABLE[name][0])[0] if TABLE.get(name) else []
        live = tuple(index for index, (param, (_, ndim, _)) in enumerate(zip(kernel.params, binding))
                     if not param.isOutput and not param.raw and ndim is None)
        if live:
            yield kernel, live


def liveSource(kernel, live):
    """CuPy's source of ``kernel``'s live variant for its first recorded signature, each live scalar a one-element
    raw array of its dtype, with 32-bit indices."""
    from types import SimpleNamespace

    from minidl.backend.elementwise import parseParams

    inParams, operation = kernel.liveVariant(live)
    variant = SimpleNamespace(name=f"{kernel.name}_live", inParams=inParams, outParams=kernel.outParams,
                              operation=operation, preamble=kernel.preamble,
                              params=parseParams(inParams, False) + parseParams(kernel.outParams, True))
    binding, _ = kernelsignatures.parseSignature(TABLE[kernel.name][0])
    binding = [(dtype, 1, True) if index in live else (dtype, ndim, raw)
               for index, (dtype, ndim, raw) in enumerate(binding)]
    return cupySource(variant, binding, index32=True)


@pytest.fixture(scope="module")
def liveCompileErrors():
    """Compile every live variant on every core; return the error per kernel name."""
    def build(kernel, live):
        try:
            source = liveSource(kernel, live)
            assert all(f"live_{kernel.params[index].name}[0]" in source for index in live)
            assert len(core.compile_with_cache(source, CUPY_OPTIONS, ARCH).cubin) > 0
        except Exception as error:  # CompileException with NVRTC's log
            return kernel.name, f"{type(error).__name__}: {error}"

    with compilingWithoutDevice():
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            return dict(failure for failure in pool.map(build, *zip(*liveVariants())) if failure)


@pytest.mark.parametrize("kernel, live", list(liveVariants()), ids=lambda value: getattr(value, "name", ""))
def test_a_kernels_live_variant_compiles_from_cupys_source(kernel, live, liveCompileErrors):
    """Every scalar a kernel takes read from a one-element raw array (``const auto name = live_name[0];``), as a
    device graph's capture launches it, through CuPy's code generator and NVRTC for sm_90."""
    if kernel.name in liveCompileErrors:
        pytest.fail(liveCompileErrors[kernel.name], pytrace=False)
