"""``minidl train`` writes a manifest and digests into --out; ``minidl verify`` tells identical runs apart from runs
that part, at the step where they part."""

import json

import numpy

from minidl import backend
from minidl.cli import main
from minidl.models import MODELS
from minidl.optim import AdaGrad
from minidl.train import loadCheckpoint, parameterDigests

STEPS = 12  # ceil(1442 / 128) + 1: steps per epoch of digits at batch 128


def train(capsys, out, *flags):
    status = main(["train", "--batch-size", "128", "--out", str(out), *map(str, flags)])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()


def verify(capsys, a, b):
    status = main(["verify", str(a), str(b)])
    return status, capsys.readouterr().out.splitlines()


def digestLines(folder):
    return [json.loads(line) for line in (folder / "digests.jsonl").read_text().splitlines()]


def test_runs_with_one_seed_are_bit_identical_and_a_resumed_one_too(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 3)
    train(capsys, tmp_path / "b", "--epochs", 3)
    train(capsys, tmp_path / "c", "--epochs", 2)
    train(capsys, tmp_path / "c", "--epochs", 3, "--resume")
    lines = digestLines(tmp_path / "a")
    assert [line["step"] for line in lines] == [STEPS, 2 * STEPS, 3 * STEPS] and len(lines[0]["digests"]) == 1
    for other in "bc":
        status, out = verify(capsys, tmp_path / "a", tmp_path / other)
        assert status == 0 and out[0].startswith("bit-identical") and "step 36" in out[0], out
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["device"]["backend"] == backend.name
    assert manifest["settings"]["lr"] is None and manifest["settings"]["epochs"] == 3
    assert "minidl_digest" in manifest["kernels"] and len(manifest["data"]) == 4


def test_a_rate_changed_at_a_resume_is_found_at_the_first_step_after_it(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 3, "--lr", 0.01)
    train(capsys, tmp_path / "b", "--epochs", 2, "--lr", 0.01)
    train(capsys, tmp_path / "b", "--epochs", 3, "--lr", 0.02, "--resume")
    status, out = verify(capsys, tmp_path / "a", tmp_path / "b")
    assert status == 1
    assert out == ["manifest: settings.lr: 0.01 vs 0.02",
                   f"parted at step {3 * STEPS} (epoch 3): digests of float32 differ (the last that agree: step "
                   f"{2 * STEPS})"]


def test_the_digest_is_the_checkpoints_parameters(tmp_path, capsys):
    train(capsys, tmp_path / "a", "--epochs", 2)
    net = MODELS["mlp"].build((64,), 10)
    optimizer = AdaGrad(learnRate=0.01).setupOn(net, useGlobalState=True)
    loadCheckpoint(tmp_path / "a" / "checkpoint.safetensors", net, optimizer)
    assert parameterDigests(optimizer) == digestLines(tmp_path / "a")[-1]["digests"]
    assert numpy.isfinite(backend.toHost(optimizer.groups[0].param)).all()


def test_verify_names_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    status = main(["verify", str(tmp_path / "a"), str(tmp_path / "a")])
    assert status == 2 and "has no manifest.json" in capsys.readouterr().err
