"""``minidl verify --bisect`` names the step, the Variable and the module where two runs part: a learning rate
changed at a resume, one changed training sample, and one module made to add in another order for one run are each
found where the test put them; runs it cannot replay are refused with exit status 2."""

import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

from minidl import backend
from minidl.cli import main
from minidl.cli.rebuild import rebuildRun
from minidl.nn import Linear
from minidl.train.bisect import bisectRuns
from minidl.train.trainer import Trainer

SAMPLES = 256  # digits capped by MINIDL_MAX_SAMPLES: 8 steps per epoch at batch 32
STEPS = 8
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def fewSamples(monkeypatch):
    monkeypatch.setenv("MINIDL_MAX_SAMPLES", str(SAMPLES))


def train(capsys, out, *flags):
    status = main(["train", "--batch-size", "32", "--out", str(out), *map(str, flags)])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()


def bisect(capsys, a, b, *options):
    status = main(["verify", "--bisect", str(a), str(b), *options])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def answer(lines):
    """{what: value} of the bisect lines ``first differing step: 17 (epoch 3)`` and the like."""
    found = {}
    for line in lines:
        for key in ("first differing step", "first differing Variable after it",
                    "first module whose forward output differs in that step", "replayed both runs"):
            if line.startswith(f"bisect: {key}"):
                found[key] = line.split(": ", 2)[-1] if key != "replayed both runs" else line
    return found


def test_a_rate_changed_at_a_resume_is_found_at_its_first_step_in_the_update(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 3, "--lr", 0.01)
    train(capsys, tmp_path / "b", "--epochs", 2, "--lr", 0.01)
    train(capsys, tmp_path / "b", "--epochs", 3, "--lr", 0.02, "--resume")
    assert sorted(os.listdir(tmp_path / "a" / "checkpoints")) == [f"step-{step}.safetensors"
                                                                   for step in (0, 16, 24, 8)]
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b")
    assert status == 1, err
    assert lines[:2] == ["manifest: settings.lr: 0.01 vs 0.02",
                         f"parted at step {3 * STEPS} (epoch 3): digests of float32 differ (the last that agree: "
                         f"step {2 * STEPS})"]
    assert lines[2:] == [
        f"bisect: replayed both runs from their common checkpoint at step {2 * STEPS} to step {3 * STEPS}",
        f"bisect: first differing step: {2 * STEPS + 1} (epoch 3)",
        "bisect: first differing Variable after it: 0.W",
        "bisect: every module's forward output agrees in that step: they part in the backward pass or the update"]


def test_the_kept_checkpoints_are_those_the_run_wrote_and_a_new_run_drops_the_old_ones(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 1)
    first = (tmp_path / "a" / "checkpoint.safetensors").read_bytes()
    train(capsys, tmp_path / "a", "--epochs", 3, "--resume")
    kept = tmp_path / "a" / "checkpoints"
    assert (kept / f"step-{STEPS}.safetensors").read_bytes() == first
    assert (kept / f"step-{3 * STEPS}.safetensors").read_bytes() == (tmp_path / "a" / "checkpoint.safetensors"
                                                                    ).read_bytes()
    train(capsys, tmp_path / "a", "--epochs", 1, "--overwrite", "--seed", 3)
    assert sorted(os.listdir(kept)) == ["step-0.safetensors", f"step-{STEPS}.safetensors"]
    assert (kept / f"step-{STEPS}.safetensors").read_bytes() != first


def writeIdx(path, array):
    """An IDX file (MNIST's format) of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.astype(numpy.uint8).tobytes())


def writeMnist(folder, images, labels):
    folder.mkdir()
    writeIdx(folder / "train-images-idx3-ubyte", images)
    writeIdx(folder / "train-labels-idx1-ubyte", labels)
    writeIdx(folder / "t10k-images-idx3-ubyte", images[:40])
    writeIdx(folder / "t10k-labels-idx1-ubyte", labels[:40])


def test_one_changed_sample_is_found_at_the_step_whose_batch_holds_it(tmp_path, capsys, monkeypatch):
    rng = numpy.random.default_rng(5)
    images, labels = rng.integers(0, 200, (160, 28, 28)), rng.integers(0, 10, 160)
    special = 77
    images[special] = 255  # the one image of pixels 255 in run A: a constant row at the batch's maximum
    writeMnist(tmp_path / "dataA", images, labels)
    changed = images.copy()
    changed[special] = rng.integers(0, 200, (28, 28))
    writeMnist(tmp_path / "dataB", changed, labels)
    seen, original = [], Trainer.step

    def watched(self, data, target):  # the oracle: which steps of run A train on the special image
        host = backend.toHost(data).reshape(len(data), -1)
        seen.append(bool(((host == host[:, :1]).all(axis=1) & (host[:, 0] == host.max())).any()))
        return original(self, data, target)

    monkeypatch.setattr(Trainer, "step", watched)
    train(capsys, tmp_path / "a", "--epochs", 2, "--data", "mnist", "--data-dir", tmp_path / "dataA")
    monkeypatch.setattr(Trainer, "step", original)
    train(capsys, tmp_path / "b", "--epochs", 2, "--data", "mnist", "--data-dir", tmp_path / "dataB")
    assert len(seen) == 10 and seen.count(True) == 2  # 5 steps per epoch, the image once in each
    step = seen.index(True) + 1
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b")
    assert status == 1, err
    assert any(line.startswith("manifest: data.trainData: ") for line in lines)
    assert answer(lines) == {"replayed both runs": "bisect: replayed both runs from their common checkpoint at "
                                                   "step 0 to step 5",
                             "first differing step": f"{step} (epoch 1)",
                             "first differing Variable after it": "0.W",
                             "first module whose forward output differs in that step": "0"}


class Reordered:
    """A test-only fault: the last Linear of the mlp (256 -> 10) adds its products in two halves while ``on``."""

    on = False
    updData = Linear.updData

    @classmethod
    def install(cls, monkeypatch):
        def updData(module, data):
            if not (cls.on and module.W.shape == (256, 10)):
                return cls.updData(module, data)
            half = module.insize // 2
            return data[:, :half] @ module.W[:half] + data[:, half:] @ module.W[half:] + module.b

        monkeypatch.setattr(Linear, "updData", updData)


def prepareReordered(label, fit):
    """The ``--prepare`` of the reordered runs: run B's replay adds in two halves, as run B did."""
    Reordered.on = label == "B"


def test_a_module_adding_in_another_order_in_one_run_is_found_at_that_module(tmp_path, capsys, monkeypatch):
    Reordered.install(monkeypatch)
    train(capsys, tmp_path / "a", "--epochs", 2)
    train(capsys, tmp_path / "b", "--epochs", 1)
    Reordered.on = True
    try:
        train(capsys, tmp_path / "b", "--epochs", 2, "--resume")
    finally:
        Reordered.on = False
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b")  # this process adds in one order only
    assert status == 1, err
    assert lines[0] == "manifest: the same" and lines[-2:] == [
        f"bisect: the replays agree at every step up to {2 * STEPS}: this process does not make the difference the "
        "logs show",
        f"bisect: run B's replay misses its own logged digest at step {2 * STEPS}: the replay is not what the run "
        "did there (other code, device, settings or data)"]

    try:
        status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b", "--prepare",
                                    f"{__name__}:prepareReordered")
    finally:
        Reordered.on = False
    assert status == 1, err
    assert answer(lines) == {"replayed both runs": "bisect: replayed both runs from their common checkpoint at "
                                                   f"step {STEPS} to step {2 * STEPS}",
                             "first differing step": f"{STEPS + 1} (epoch 2)",
                             "first differing Variable after it": "0.W",
                             "first module whose forward output differs in that step": "4"}
    try:
        result = bisectRuns(tmp_path / "a", tmp_path / "b", rebuildRun, prepare=prepareReordered)
    finally:
        Reordered.on = False
    assert (result.checkpoint, result.step, result.epoch, result.unfaithful) == (STEPS, STEPS + 1, 2, {})


def test_a_prepare_that_cannot_be_had_exits_2_before_any_replay(tmp_path, capsys):
    for prepare, message in (("nocolon", "--prepare takes MODULE:FUNCTION"),
                             ("tests.train.no_such_module:f", "No module named"),
                             (f"{__name__}:noSuchFunction", "has no attribute 'noSuchFunction'"),
                             (f"{__name__}:STEPS", "STEPS is not a function")):
        status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b", "--prepare", prepare)
        assert status == 2 and message in err and lines == [], (prepare, err)
    assert main(["verify", str(tmp_path / "a"), str(tmp_path / "b"), "--prepare", f"{__name__}:prepareReordered"]) == 2
    assert "--prepare is for --bisect" in capsys.readouterr().err


def test_runs_that_cannot_be_replayed_are_refused_with_status_2(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 1)
    train(capsys, tmp_path / "seed", "--epochs", 1, "--seed", 1)
    train(capsys, tmp_path / "double", "--epochs", 1, "--dtype", "float64")
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "seed")
    assert status == 2 and "no checkpoint at or before step 8 is the same in both runs" in err
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "double")
    assert status == 2 and "the runs train different models" in err and "module.0.W" in err
    shutil.copytree(tmp_path / "seed", tmp_path / "bare")
    shutil.rmtree(tmp_path / "bare" / "checkpoints")
    status, lines, err = bisect(capsys, tmp_path / "bare", tmp_path / "a")
    assert status == 2 and "bare keeps no checkpoints" in err
    manifest = json.loads((tmp_path / "seed" / "manifest.json").read_text())
    del manifest["settings"]["model"]
    (tmp_path / "seed" / "manifest.json").write_text(json.dumps(manifest))
    train(capsys, tmp_path / "c", "--epochs", 1, "--seed", 1, "--lr", 0.02)
    status, lines, err = bisect(capsys, tmp_path / "seed", tmp_path / "c")
    assert status == 2 and "holds no settings of minidl train" in err
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "nothing")
    assert status == 2 and "has no manifest.json" in err


def test_identical_runs_have_nothing_to_bisect(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 1)
    train(capsys, tmp_path / "b", "--epochs", 1)
    status, lines, err = bisect(capsys, tmp_path / "a", tmp_path / "b")
    assert status == 0 and lines[-1] == "bisect: nothing to replay, the logs do not part", err


@pytest.mark.parametrize("environment", [{"MINIDL_BACKEND": "numpy", "MINIDL_CPU_KERNELS": "numpy"},
                                         {"MINIDL_BACKEND": "numpy", "MINIDL_CPU_KERNELS": "compiled"},
                                         {"MINIDL_BACKEND": "simulated"}], ids=["numpy", "compiled", "simulated"])
def test_the_rate_change_is_found_alike_on_each_cpu_path_and_the_simulated_device(tmp_path, environment):
    if environment.get("MINIDL_CPU_KERNELS") == "compiled" and shutil.which(os.environ.get("CXX") or "c++") is None:
        pytest.skip("no C++ compiler for the compiled CPU kernels")
    env = {**os.environ, "PYTHONPATH": ROOT, "MINIDL_MAX_SAMPLES": "64", **environment}

    def command(*words):
        return subprocess.run([sys.executable, "-m", "minidl", *map(str, words)], env=env, capture_output=True,
                              text=True)

    for flags in (("a", "--epochs", 2), ("b", "--epochs", 1), ("b", "--epochs", 2, "--lr", 0.05, "--resume")):
        done = command("train", "--batch-size", 16, "--out", tmp_path / flags[0], *flags[1:])
        assert done.returncode == 0, done.stderr
    done = command("verify", "--bisect", tmp_path / "a", tmp_path / "b")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-4:-1] == ["bisect: replayed both runs from their common checkpoint at step 4 "
                                               "to step 8", "bisect: first differing step: 5 (epoch 2)",
                                               "bisect: first differing Variable after it: 0.W"]
