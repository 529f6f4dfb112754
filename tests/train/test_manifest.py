"""The manifest of a fit run and the comparison of two runs: a changed sample shows in the data's hash and parts the
digests at the first step; the kernels' hashes follow their source."""

import hashlib
import inspect
import json

import numpy
import pytest

from minidl.backend import Elementwise, name
from minidl.backend.elementwise import registry
from minidl.errors import CallbackError, CheckpointError
from minidl.optim import AdaGrad
from minidl.train import Digests
from minidl.train.compare import compareRuns
from minidl.train.manifest import Manifest, arrayHash, kernelHash, readManifest
from tests.train.test_fit import DATA, LABELS, setup


def fitRun(folder, data=DATA):
    folder.mkdir()
    net, optimizer, trainer = setup(0.3, AdaGrad)
    trainer.fit(data, LABELS, 3, callbacks=[
        Manifest(folder / "manifest.json", seed=5, data={"data": data, "labels": LABELS}),
        Digests(folder / "digests.jsonl")])


def test_a_changed_sample_shows_in_the_manifest_and_parts_the_digests_at_the_first_step(tmp_path):
    fitRun(tmp_path / "a")
    fitRun(tmp_path / "b")
    changed = DATA.copy()
    changed[17, 2] += 1
    fitRun(tmp_path / "c", changed)
    assert compareRuns(tmp_path / "a", tmp_path / "b").identical
    comparison = compareRuns(tmp_path / "a", tmp_path / "c")
    assert [key for key, _, _ in comparison.manifest] == ["data.data"] and not comparison.identical
    assert comparison.parting[0]["step"] == 10 and comparison.lastAgreed is None
    manifest = readManifest(tmp_path / "a" / "manifest.json")
    assert manifest["settings"] == {"module": "Sequential", "cost": "CrossEntropy", "optimizer": "AdaGrad",
                                    "hypers": {"learnRate": 0.3, "epsilon": 1e-8}, "batchsize": 16}
    assert manifest["device"]["backend"] == name and manifest["seed"] == 5
    assert manifest["data"]["labels"] == arrayHash(LABELS)
    assert set(manifest["kernels"]) <= {kernel.name for kernel in registry}


def test_hashes_follow_the_bytes_and_the_source():
    expected = hashlib.sha256(b"<f4(160, 6)" + DATA.astype("<f4").tobytes()).hexdigest()
    assert arrayHash(DATA) == expected and arrayHash(DATA.reshape(80, 12)) != expected
    kernel = next(kernel for kernel in registry if kernel.name == "minidl_digest")
    parts = (kernel.name, kernel.inParams, kernel.outParams, kernel.operation, kernel.preamble, kernel.grain,
             inspect.getsource(kernel.reference))
    assert kernelHash(kernel) == hashlib.sha256("\0".join(parts).encode()).hexdigest()
    twin = Elementwise.__new__(Elementwise)
    twin.__dict__.update(kernel.__dict__, operation=kernel.operation.replace("29", "31"))
    assert kernelHash(twin) != kernelHash(kernel)


def test_a_kernel_whose_reference_has_no_python_source_is_hashed_by_its_name():
    kernel = Elementwise("manifest_test_copy", "T x", "T y", "y = x", numpy.copyto)  # NumPy's C function
    parts = (kernel.name, kernel.inParams, kernel.outParams, kernel.operation, kernel.preamble, kernel.grain,
             "numpy.copyto")
    assert kernelHash(kernel) == hashlib.sha256("\0".join(parts).encode()).hexdigest()
    twin = Elementwise.__new__(Elementwise)
    twin.__dict__.update(kernel.__dict__, reference=numpy.putmask)
    assert kernelHash(twin) != kernelHash(kernel)


def test_bad_settings_and_missing_files_are_clear_errors(tmp_path):
    net, optimizer, trainer = setup(0.1)
    with pytest.raises(CallbackError, match="JSON"):
        trainer.fit(DATA, LABELS, 1, callbacks=[Manifest(tmp_path / "m.json", settings={"f": object()})])
    with pytest.raises(CallbackError, match="host"):
        arrayHash([1, 2])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="no digests.jsonl"):
        compareRuns(tmp_path / "x", tmp_path / "x")
    with pytest.raises(CheckpointError, match="not a minidl manifest"):
        readManifest(tmp_path / "x" / "manifest.json")


def test_the_fit_callbacks_the_readme_names_together_import_from_minidl_train():
    # README: "Digests(path, every=1, everySteps=None) and Manifest(path, seed=None, data=None, settings=None) are fit
    # callbacks", beside the other callbacks minidl.train exports
    import minidl.train

    assert minidl.train.Manifest is Manifest and "Manifest" in minidl.train.__all__
