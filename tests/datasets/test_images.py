"""Image files: sources against each other, decoding against Pillow's own pixels, augmentation against formulas
on the same draws, loaders with and without worker processes, and workers that die."""

import os
import tarfile
import threading
import time

import numpy
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from minidl.datasets.imageaugment import ImageAugment, jitterColours, keyedGenerator  # noqa: E402
from minidl.datasets.imagedecode import ImageDecoder  # noqa: E402
from minidl.datasets.imageloader import ImagePipeline, splitIndices  # noqa: E402
from minidl.datasets.imagesources import openSource  # noqa: E402
from minidl.errors import DataError  # noqa: E402
from tests.datasets.imagetrees import (  # noqa: E402
    CrashingSource,
    StallingSource,
    writeList,
    writeTar,
    writeTree,
    writeZip,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return str(writeTree(tmp_path_factory.mktemp("images") / "tree"))


def decodedAll(source, size=12, channels=3):
    decoder = ImageDecoder(size, channels)
    return numpy.stack([decoder.decode(source.read(index), source.describe(index)) for index in range(len(source))])


def test_folder_tar_zip_and_list_sources_give_the_same_samples(tree, tmp_path):
    sources = [openSource(f"folder:{tree}"), openSource(f"tar:{writeTar(tree, tmp_path / 'a.tar')}"),
               openSource(f"zip:{writeZip(tree, tmp_path / 'a.zip')}"),
               openSource(f"list:{writeList(tree, tmp_path / 'files.txt')}")]
    folder = sources[0]
    assert folder.classes == ["cat", "dog", "owl"] and len(folder) == 18
    assert folder.labels() == [0] * 6 + [1] * 6 + [2] * 6
    assert folder.entries[0] == ("cat/000.jpg", 0)
    for source in sources[1:]:
        assert source.classes == folder.classes and source.labels() == folder.labels()
        for index in (0, 7, 17):
            assert source.read(index) == folder.read(index)  # the exact bytes of the file
    numpy.testing.assert_array_equal(decodedAll(sources[2]), decodedAll(folder))


def test_a_compressed_tar_and_a_malformed_source_name_are_refused(tree, tmp_path):
    with pytest.raises(DataError, match="is compressed"):
        openSource(f"tar:{writeTar(tree, tmp_path / 'a.tar.gz', 'w:gz')}")
    with pytest.raises(DataError, match="KIND:PATH"):
        openSource(f"rar:{tree}")
    with pytest.raises(DataError, match="no such folder"):
        openSource(f"folder:{tmp_path / 'missing'}")


def test_a_tar_reads_the_files_its_links_lead_to_as_the_folder_does(tmp_path):
    """A folder follows its links; the tar of it left every linked image out, silently (not even counted)."""
    root = writeTree(tmp_path / "tree", {"cat": 2, "dog": 2})
    os.symlink("000.jpg", tmp_path / "tree" / "cat" / "again.jpg")
    os.symlink("../cat/001.png", tmp_path / "tree" / "dog" / "cat.png")
    os.link(tmp_path / "tree" / "dog" / "000.jpg", tmp_path / "tree" / "dog" / "hard.jpg")
    folder, tar = openSource(f"folder:{root}"), openSource(f"tar:{writeTar(root, tmp_path / 'a.tar')}")
    assert tar.entries == folder.entries and len(tar) == 7 and tar.ignored == folder.ignored == 0
    assert [tar.read(index) for index in range(len(tar))] == [folder.read(index) for index in range(len(folder))]
    with tarfile.open(tmp_path / "b.tar", "w") as archive:
        for name in ("cat/000.jpg", "dog/000.jpg"):
            archive.add(tmp_path / "tree" / name, arcname=name)
        link = tarfile.TarInfo("dog/gone.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "missing.jpg"
        archive.addfile(link)
    with pytest.raises(DataError, match="dog/gone.jpg is a link to missing.jpg, which leads to no file"):
        openSource(f"tar:{tmp_path / 'b.tar'}")


def test_a_list_naming_a_missing_file_is_refused_when_it_is_read(tree, tmp_path):
    """A missing file stopped the run when its batch came (a read error is never skipped), an epoch or more in."""
    listed = writeList(tree, tmp_path / "files.txt")
    lines = listed.read_text().splitlines()
    listed.write_text("\n".join([*lines[:3], "gone/missing.jpg cat", *lines[3:]]) + "\n")
    with pytest.raises(DataError, match="files.txt line 4: no image file 'gone/missing.jpg'"):
        openSource(f"list:{listed}")


def test_a_tree_of_one_class_folder_is_refused(tmp_path):
    """A tree one level too deep (an archive of the folder rather than of its classes, ``zip -r data.zip data``)
    read as one class "data": every image labelled 0, and a run reached 100 % validation accuracy on it."""
    outer = tmp_path / "outer"
    writeTree(outer / "data")
    for text in (f"folder:{outer}", f"zip:{writeZip(outer, tmp_path / 'a.zip')}",
                 f"tar:{writeTar(outer, tmp_path / 'a.tar')}"):
        with pytest.raises(DataError, match="holds one class folder, 'data'"):
            openSource(text)
    assert openSource(f"folder:{outer / 'data'}").classes == ["cat", "dog", "owl"]


def test_an_empty_class_folder_a_symlink_loop_and_stray_files(tmp_path):
    root = writeTree(tmp_path / "tree", {"cat": 2, "dog": 2})
    (tmp_path / "tree" / "notes.txt").write_text("not an image")
    (tmp_path / "tree" / "dog" / "README").write_text("not an image")
    assert openSource(f"folder:{root}").ignored == 2
    os.symlink(tmp_path / "tree", tmp_path / "tree" / "cat" / "again")
    with pytest.raises(DataError, match="symbolic link loop"):
        openSource(f"folder:{root}")
    os.remove(tmp_path / "tree" / "cat" / "again")
    os.symlink("self", tmp_path / "tree" / "cat" / "self")
    with pytest.raises(DataError, match="self"):
        openSource(f"folder:{root}")
    os.remove(tmp_path / "tree" / "cat" / "self")
    (tmp_path / "tree" / "bird").mkdir()
    with pytest.raises(DataError, match="'bird' holds no .jpg"):
        openSource(f"folder:{root}")


def test_decoding_keeps_the_centred_square_and_converts_modes_as_pillow_does(tmp_path):
    rng = numpy.random.default_rng(3)
    wide = rng.integers(0, 256, (16, 32, 3), dtype=numpy.uint8)  # height 16, width 32
    Image.fromarray(wide).save(tmp_path / "wide.png")
    data = (tmp_path / "wide.png").read_bytes()
    numpy.testing.assert_array_equal(ImageDecoder(16).decode(data, "wide.png"), wide[:, 8:24].transpose(2, 0, 1))
    grey = numpy.asarray(Image.fromarray(wide).convert("L"))[:, 8:24]
    numpy.testing.assert_array_equal(ImageDecoder(16, channels=1).decode(data, "wide.png")[0], grey)
    palette = Image.fromarray(wide).convert("P")
    palette.save(tmp_path / "palette.png")
    numpy.testing.assert_array_equal(ImageDecoder(16).decode((tmp_path / "palette.png").read_bytes(), "p"),
                                     numpy.asarray(palette.convert("RGB"))[:, 8:24].transpose(2, 0, 1))
    Image.fromarray(rng.integers(0, 60000, (8, 8)).astype(numpy.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match=r"deep.png has the mode 'I;16'"):
        ImageDecoder(8).decode((tmp_path / "deep.png").read_bytes(), "deep.png")
    with pytest.raises(DataError, match="broken.jpg cannot be decoded"):
        ImageDecoder(8).decode(b"\xff\xd8\xff\xe0 not really a jpeg", "broken.jpg")
    Image.fromarray(wide).save(tmp_path / "picture.gif")
    with pytest.raises(DataError, match="is a GIF image"):
        ImageDecoder(8).decode((tmp_path / "picture.gif").read_bytes(), "picture.gif")


def test_augmentation_is_the_formulas_on_the_samples_own_draws(tmp_path):
    square = numpy.random.default_rng(4).integers(0, 256, (10, 10, 3), dtype=numpy.uint8)
    Image.fromarray(square).save(tmp_path / "square.png")
    data, plain = (tmp_path / "square.png").read_bytes(), square.transpose(2, 0, 1)
    decoder = ImageDecoder(10)
    flips, turns = set(), set()
    for index in range(12):
        generator = keyedGenerator(5, 2, 1, index)
        (_, _, _, _, flip, *factors), turn = generator.random(8), int(generator.integers(0, 4))
        augment = ImageAugment(flip=True, rotate=True)
        expected = numpy.rot90(plain[:, :, ::-1] if flip < 0.5 else plain, turn, axes=(1, 2))
        draws = ImageAugment.draws(5, 1, index)
        numpy.testing.assert_array_equal(augment.apply(decoder.decode(data, "s"), draws), expected)
        flips.add(flip < 0.5)
        turns.add(turn)
        jittered = ImageAugment(jitter=0.3).apply(plain, draws)
        b, c, s = (0.7 + 0.6 * factor for factor in factors)
        x = plain.astype(numpy.float64) * b
        weights = numpy.array([0.299, 0.587, 0.114])[:, None, None]
        mean = (x * weights).sum(axis=0).mean()
        x = mean + c * (x - mean)
        x = (x * weights).sum(axis=0) + s * (x - (x * weights).sum(axis=0))
        assert numpy.abs(jittered.astype(int) - numpy.clip(numpy.rint(x), 0, 255)).max() <= 1
    assert flips == {True, False} and len(turns) >= 3
    crop = ImageAugment(scale=(0.25, 0.5)).box(ImageAugment.draws(5, 1, 0))(40, 20)
    area = (crop[2] - crop[0]) * 40 * (crop[3] - crop[1]) * 20
    assert 0.25 * 800 - 1e-9 <= area <= 0.5 * 800 + 1e-9 and 0 <= min(crop) and max(crop) <= 1
    assert numpy.array_equal(jitterColours(plain, 1.0, 1.0, 1.0), plain)


def collect(loader, epoch, start=0):
    return [(images.copy(), labels.copy()) for images, labels in loader.batches(epoch, start)]


def assertSameBatches(actual, expected):
    assert len(actual) == len(expected)
    for (images, labels), (images2, labels2) in zip(actual, expected):
        numpy.testing.assert_array_equal(images, images2)
        numpy.testing.assert_array_equal(labels, labels2)


def test_batches_depend_on_seed_epoch_and_index_only_not_on_workers(tree):
    source = openSource(f"folder:{tree}")
    train, val = splitIndices(len(source), 0.25, seed=2)
    assert len(val) == 4 and sorted(numpy.concatenate([train, val])) == list(range(18))
    runs = []
    for workers in (0, 2):
        augment = ImageAugment(scale=(0.3, 1.0), flip=True, jitter=0.2, rotate=True)
        with ImagePipeline(source, ImageDecoder(10), 4, augment, seed=2, workers=workers) as pipeline:
            loader = pipeline.loader(train, train=True)
            runs.append([collect(loader, 0), collect(loader, 1), collect(loader, 1, start=2),
                         collect(pipeline.loader(val, train=False), 0)])
    for inline, workers in zip(*runs):
        assertSameBatches(workers, inline)
    epoch0, epoch1, rest, validation = runs[0]
    assertSameBatches(rest, epoch1[2:])  # an epoch resumed at its third batch
    assert [len(labels) for _, labels in epoch0] == [4, 4, 4, 2]
    assert not all(numpy.array_equal(a[1], b[1]) for a, b in zip(epoch0, epoch1))  # another order each epoch
    labels = numpy.array(source.labels())
    seen = numpy.concatenate([lab for _, lab in epoch0])
    numpy.testing.assert_array_equal(numpy.sort(seen), numpy.sort(labels[train]))
    numpy.testing.assert_array_equal(numpy.concatenate([lab for _, lab in validation]), labels[val])


def test_a_corrupt_image_names_its_file_or_is_skipped_and_counted(tmp_path):
    root = writeTree(tmp_path / "tree", {"cat": 3, "dog": 3})
    (tmp_path / "tree" / "dog" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    source = openSource(f"folder:{root}")
    indices = numpy.arange(len(source))
    with ImagePipeline(source, ImageDecoder(8), 3, workers=1) as pipeline:
        with pytest.raises(DataError, match=r"dog/001.png cannot be decoded"):
            collect(pipeline.loader(indices, train=False), 0)
    with ImagePipeline(source, ImageDecoder(8), 3, skipCorrupt=True) as pipeline:
        loader = pipeline.loader(indices, train=False)
        batches = collect(loader, 0)
    assert [len(labels) for _, labels in batches] == [3, 2] and len(loader.skipped) == 1
    assert "dog/001.png" in loader.skipped[0]


def killWhenReading(pool, name, killed):
    """Kill the worker of ``pool`` that says it is reading ``name``, once one does (at most 60 s from now), and
    append the time to ``killed``. Only that one: a second worker killed in the middle of another file would be
    as dead, and the error may name either."""

    def reader():
        return next((pid for pid, note in zip(pool.pids(), pool.notes) if note.value.decode().endswith(name)), None)

    def kill():
        deadline = time.monotonic() + 60
        while reader() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(reader(), 9)
        killed.append(time.monotonic())

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_a_killed_worker_ends_the_run_in_seconds_naming_its_file(tmp_path):
    root = writeTree(tmp_path / "tree", {"cat": 4, "dog": 4})
    source = StallingSource(root, trap="dog/003.png")
    with ImagePipeline(source, ImageDecoder(8), 2, workers=2) as pipeline:
        loader = pipeline.loader(numpy.arange(len(source)), train=False)
        batches = loader.batches(0)
        next(batches)
        pool, killed = pipeline.pool, []
        killer = killWhenReading(pool, "dog/003.png", killed)
        with pytest.raises(DataError, match=r"killed by signal 9 while reading .*dog/003.png"):
            list(batches)
        raised = time.monotonic()
        killer.join()
        assert raised - killed[0] < 10 and not pool.processes  # the run left early and closed the pool


def test_a_worker_that_exits_or_raises_ends_the_run_with_its_error(tmp_path):
    root = writeTree(tmp_path / "tree", {"cat": 3, "dog": 3})
    source = CrashingSource(root, trap="dog/001.png")
    start = time.monotonic()
    with ImagePipeline(source, ImageDecoder(8), 2, workers=2) as pipeline:
        with pytest.raises(DataError, match=r"exited with status 3 while reading .*dog/001.png"):
            collect(pipeline.loader(numpy.arange(len(source)), train=False), 0)
    assert time.monotonic() - start < 20
    source = openSource(f"folder:{root}")
    os.remove(os.path.join(root, "cat", "002.jpg"))  # listed, then gone: the worker's error names it
    with ImagePipeline(source, ImageDecoder(8), 2, workers=1) as pipeline:
        with pytest.raises(DataError, match=r"cat/002.jpg cannot be read"):
            collect(pipeline.loader(numpy.arange(len(source)), train=False), 0)
