"""The signature table's bookkeeping (tests/kernelsignatures.py): what a call's signature is, how it reads
back, and that a call missing from the table is reported with the command that records it."""

from pathlib import Path
from types import SimpleNamespace

import numpy
import pytest

from minidl.backend import Reduction
from minidl.testing import packageKernels, packageReductions
from tests import kernelsignatures

KERNELS = {kernel.name: kernel for kernel in packageKernels() + packageReductions()}


def typedCall(name, *args):
    return kernelsignatures.uncheckedArgs(KERNELS[name], args)[0]


def test_a_signature_names_dtypes_kinds_ndims_and_the_index_width():
    args = typedCall("minidl_svm_grad", numpy.zeros((2, 3), numpy.float16), numpy.zeros(2, numpy.int32), 3, 0, 0.5,
                     numpy.zeros((2, 3), numpy.float16))
    signature = kernelsignatures.signatureOf(KERNELS["minidl_svm_grad"], args)
    assert signature == ("scores=float16[raw:2] labels=int32[raw:1] classes=int32 squared=int32 scale=float16 "
                         "grad=float16[1] i32")
    params, index32 = kernelsignatures.parseSignature(signature)
    assert index32 and params[0] == (numpy.dtype("float16"), 2, True) and params[2] == (numpy.dtype("int32"), None,
                                                                                         False)
    assert params[5] == (numpy.dtype("float16"), 1, False)


def test_zero_d_loops_keep_ndim_0_and_empty_loops_have_no_signature():
    relu = KERNELS["minidl_relu"]
    scalar = kernelsignatures.signatureOf(relu, typedCall("minidl_relu", numpy.ones(()), numpy.zeros(())))
    assert scalar == "x=float64[0] y=float64[0] i32"
    empty = typedCall("minidl_relu", numpy.zeros((0, 3), numpy.float32), numpy.zeros((0, 3), numpy.float32))
    assert kernelsignatures.signatureOf(relu, empty) is None


def test_a_missing_signature_fails_with_the_command_that_records_it(monkeypatch):
    monkeypatch.delenv(kernelsignatures.RECORD_VARIABLE, raising=False)
    monkeypatch.setattr(kernelsignatures, "drawsAreFixed", lambda: True)  # CI's derandomized profile
    recorder = kernelsignatures.Recorder()
    recorder.wholeSuite = True  # CI's run
    recorder.table = {"minidl_relu": {"x=float32[1] y=float32[1] i32"}}
    relu = KERNELS["minidl_relu"]
    assert recorder.note(relu, typedCall("minidl_relu", numpy.ones(3, numpy.float32), numpy.ones(3, numpy.float32))) \
        is None
    covered = recorder.note(relu, typedCall("minidl_relu", numpy.ones(3), numpy.ones(3)))  # a compiled variant
    assert covered is None
    problem = recorder.note(relu, typedCall("minidl_relu", numpy.ones(()), numpy.ones(())))
    assert "x=float64[0] y=float64[0] i32" in problem and kernelsignatures.RECORD_COMMAND in problem
    monkeypatch.setenv(kernelsignatures.RECORD_VARIABLE, "1")
    assert recorder.note(relu, typedCall("minidl_relu", numpy.ones(3), numpy.ones(3))) is None
    assert recorder.seen["minidl_relu"] == {"x=float32[1] y=float32[1] i32", "x=float64[1] y=float64[1] i32",
                                            "x=float64[0] y=float64[0] i32"}


def test_with_random_draws_a_missing_signature_warns_and_goes_on(monkeypatch):
    monkeypatch.delenv(kernelsignatures.RECORD_VARIABLE, raising=False)
    monkeypatch.setattr(kernelsignatures, "drawsAreFixed", lambda: False)  # the "dev" profile
    recorder = kernelsignatures.Recorder()
    recorder.table = {"minidl_relu": {"x=float32[1] y=float32[1] i32"}}
    with pytest.warns(kernelsignatures.UnrecordedSignatureWarning, match=r"x=float64\[0\] y=float64\[0\] i32"):
        problem = recorder.note(KERNELS["minidl_relu"],
                                typedCall("minidl_relu", numpy.ones(()), numpy.ones(())))
    assert problem is None


def test_in_part_of_the_suite_a_missing_signature_warns_and_goes_on(monkeypatch):
    # a part of the suite draws other cases than the whole, whose derandomized draws the table records
    monkeypatch.delenv(kernelsignatures.RECORD_VARIABLE, raising=False)
    monkeypatch.setattr(kernelsignatures, "drawsAreFixed", lambda: True)
    recorder = kernelsignatures.Recorder()
    recorder.table = {"minidl_relu": {"x=float32[1] y=float32[1] i32"}}
    with pytest.warns(kernelsignatures.UnrecordedSignatureWarning, match=r"x=float64\[0\] y=float64\[0\] i32"):
        problem = recorder.note(KERNELS["minidl_relu"], typedCall("minidl_relu", numpy.ones(()), numpy.ones(())))
    assert problem is None


@pytest.mark.parametrize("args, keyword, marks, whole", [
    (["tests"], "", "", True), ([str(Path(kernelsignatures.__file__).parent)], "", "", True),
    (["tests/backend"], "", "", False), (["tests/cost/test_costs.py::test_x"], "", "", False),
    (["tests"], "relu", "", False), (["tests"], "", "slow", False), (["tests", "tests/cost"], "", "", False),
])
def test_the_whole_suite_is_the_tests_folder_with_nothing_deselected(monkeypatch, args, keyword, marks, whole):
    monkeypatch.chdir(Path(kernelsignatures.__file__).parents[1])
    config = SimpleNamespace(args=args, option=SimpleNamespace(keyword=keyword, markexpr=marks))
    assert kernelsignatures.isWholeSuite(config) is whole


def test_a_reductions_signature_names_roles_ndims_and_reads_back():
    kernel = Reduction("test_signature_sum", "T x, T centre, float32 scale", "T y", "x - centre", "a + b",
                       "y = scale * a", "0", reference=None)
    typed, _, plan = kernelsignatures.uncheckedReductionArgs(
        kernel, (numpy.zeros((4, 3, 5), numpy.float16), numpy.zeros((4, 1, 5), numpy.float16), 2.0,
                 numpy.zeros((4, 5), numpy.float16)), axis=1)
    signature = kernelsignatures.reductionSignatureOf(kernel, typed, plan)
    assert signature == "x=float16[in:3] centre=float16[in:3] scale=float32 y=float16[out:1] i32"
    assert kernelsignatures.formatSignature(kernel, *kernelsignatures.parseSignature(signature)) == signature
    typed, _, plan = kernelsignatures.uncheckedReductionArgs(
        kernel, (numpy.zeros((6, 7)), numpy.zeros((1, 1)), 1, numpy.zeros(())), axis=None)
    assert kernelsignatures.reductionSignatureOf(kernel, typed, plan) == \
        "x=float64[in:1] centre=float64[in:1] scale=float32 y=float64[out:0] i32"
    variants = {kernelsignatures.formatSignature(kernel, *variant)
                for variant in kernelsignatures.variants(kernel, signature)}
    assert "x=float32[in:3] centre=float32[in:3] scale=float32 y=float32[out:1] i64" in variants


STALE_WHILE_RECORDING = pytest.mark.skipif(kernelsignatures.recording(), reason="this run rewrites the table")


@STALE_WHILE_RECORDING
def test_the_recorded_table_covers_every_package_kernel():
    table = kernelsignatures.loadTable()
    missing = set(KERNELS) - set(table)
    assert not missing, f"kernels the suite never calls, so CI never compiles them for the GPU: {sorted(missing)}"


@STALE_WHILE_RECORDING
def test_every_recorded_signature_reads_back_as_written():
    for name, signatures in kernelsignatures.loadTable().items():
        for signature in signatures:
            assert kernelsignatures.formatSignature(KERNELS[name], *kernelsignatures.parseSignature(signature)) \
                == signature
