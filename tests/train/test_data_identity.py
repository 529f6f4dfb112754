"""The manifest identifies image files (names, labels, sizes, contents: ``imageSourceHash``) and a text (its codes
and vocabulary), so that ``minidl verify`` names a changed file or text as a manifest difference."""

import json
import shutil

import pytest

from minidl.cli import main
from minidl.datasets.imagesources import openSource
from minidl.train.manifest import imageSourceHash

pytest.importorskip("PIL")

from tests.datasets.imagetrees import writeTar, writeTree, writeZip  # noqa: E402

IMAGE_OPTIONS = ("--model", "cnn", "--image-size", 12, "--batch-size", 4, "--lr", 0.05, "--val-fraction", 0.25,
                 "--epochs", 1, "--workers", 0)


def changeOneByte(tree):
    """Flip the last byte of the tree's first image (its bytes change, its name and size do not)."""
    path = sorted(tree.glob("*/*"))[0]
    content = bytearray(path.read_bytes())
    content[-1] ^= 1
    path.write_bytes(bytes(content))


@pytest.fixture
def trees(tmp_path):
    tree = writeTree(tmp_path / "tree", counts={"cat": 3, "dog": 3})
    same, changed, renamed = (tmp_path / name for name in ("same", "changed", "renamed"))
    for copy in (same, changed, renamed):
        shutil.copytree(tree, copy)
    changeOneByte(changed)
    (renamed / "dog").rename(renamed / "wolf")
    return tree, same, changed, renamed


@pytest.mark.parametrize("kind", ["folder", "tar", "zip"])
def test_the_hash_of_image_files_changes_with_a_byte_or_a_class_name_only(trees, tmp_path, kind):
    def source(tree):
        if kind == "folder":
            return openSource(f"folder:{tree}")
        writer = writeTar if kind == "tar" else writeZip
        return openSource(f"{kind}:{writer(tree, tmp_path / f'{tree.name}.{kind}')}")

    tree, same, changed, renamed = (source(path) for path in trees)
    assert imageSourceHash(tree) == imageSourceHash(same)
    assert len({imageSourceHash(tree), imageSourceHash(changed), imageSourceHash(renamed)}) == 3


def run(capsys, *args):
    status = main([*map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def manifestData(folder):
    return json.loads((folder / "manifest.json").read_text())["data"]


def test_verify_names_a_changed_image_file(trees, tmp_path, capsys):
    from PIL import Image

    tree, changed = trees[0], tmp_path / "redrawn"
    shutil.copytree(tree, changed)
    Image.new("RGB", (16, 16), (200, 10, 10)).save(sorted(changed.glob("*/*"))[0])  # another picture, same name
    for name, data in (("a", tree), ("b", changed)):
        status, _, err = run(capsys, "train", *IMAGE_OPTIONS, "--data", f"folder:{data}", "--out", tmp_path / name)
        assert status == 0, err
    assert manifestData(tmp_path / "a") == {"images": imageSourceHash(openSource(f"folder:{tree}"))}
    status, lines, err = run(capsys, "verify", tmp_path / "a", tmp_path / "b")
    assert status == 1, err
    assert lines[0].startswith("manifest: data.images: ") and len(lines) >= 2


def test_text_runs_log_digests_and_verify_names_a_changed_text(tmp_path, capsys):
    text = "abcd efgh ijkl. " * 80
    (tmp_path / "text.txt").write_text(text)
    (tmp_path / "other.txt").write_text(text[:100] + "a" + text[101:])  # one space of the training part: an "a"
    for name, file in (("a", "text.txt"), ("b", "text.txt"), ("c", "other.txt")):
        status, _, err = run(capsys, "train", "--task", "text", "--model", "lstm", "--text", tmp_path / file,
                             "--epochs", 2, "--windows", 32, "--batch-size", 16, "--out", tmp_path / name)
        assert status == 0, err
    steps = [json.loads(line)["step"] for line in (tmp_path / "a" / "digests.jsonl").read_text().splitlines()]
    assert steps == [2, 4] and set(manifestData(tmp_path / "a")) == {"textTrain", "textHeldOut", "vocabulary"}
    status, lines, err = run(capsys, "verify", tmp_path / "a", tmp_path / "b")
    assert status == 0 and lines[0].startswith("bit-identical"), (lines, err)
    status, lines, err = run(capsys, "verify", tmp_path / "a", tmp_path / "c")
    assert status == 1, err
    assert [line.split(":")[1].strip() for line in lines if line.startswith("manifest: data.")] == ["data.textTrain"]
    assert any(line.startswith("parted at step 2 ") for line in lines), lines
    status, lines, err = run(capsys, "verify", "--bisect", tmp_path / "a", tmp_path / "c")
    assert status == 2 and "--task text runs are not replayed" in err
