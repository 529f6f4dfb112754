"""Small image trees and archives written with Pillow for the image-data tests, and sources that misbehave in
worker processes (importable by name, so a spawned worker can unpickle them)."""

import os
import tarfile
import time
import zipfile

import numpy

from minidl.datasets.imagesources import FolderSource

COLOURS = {"cat": (200, 40, 40), "dog": (40, 60, 200), "owl": (60, 190, 60)}


def writeTree(root, counts=None, seed=0, sizes=((20, 24), (31, 17), (16, 16))):
    """One folder per class under ``root``, ``counts[class]`` images each (default 6 of cat, dog and owl): a
    class's colour plus noise, of several sizes, PNG and JPEG alternately; returns the folder."""
    from PIL import Image

    counts = counts or {name: 6 for name in COLOURS}
    rng = numpy.random.default_rng(seed)
    for name, count in counts.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for index in range(count):
            height, width = sizes[index % len(sizes)]
            pixels = numpy.clip(numpy.array(COLOURS[name]) + rng.normal(0, 40, (height, width, 3)), 0, 255)
            suffix = "png" if index % 2 else "jpg"
            Image.fromarray(pixels.astype(numpy.uint8)).save(os.path.join(root, name, f"{index:03d}.{suffix}"))
    return root


def writeTar(tree, path, mode="w"):
    with tarfile.open(path, mode) as archive:
        for name in sorted(os.listdir(tree)):
            archive.add(os.path.join(tree, name), arcname=name)
    return path


def writeZip(tree, path):
    with zipfile.ZipFile(path, "w") as archive:
        for folder, _, files in sorted(os.walk(tree)):
            for name in sorted(files):
                full = os.path.join(folder, name)
                archive.write(full, os.path.relpath(full, tree))
    return path


def writeList(tree, path):
    """A list file naming every image of ``tree`` by its path relative to the list file, with its class."""
    lines = []
    for label in sorted(os.listdir(tree)):
        for name in sorted(os.listdir(os.path.join(tree, label))):
            lines.append(f"{os.path.relpath(os.path.join(tree, label, name), os.path.dirname(path))} {label}")
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return path


class TrappedSource(FolderSource):
    """A folder whose file named ``trap`` runs the subclass's ``spring()`` in the worker that reads it."""

    def __init__(self, root, trap):
        super().__init__(root)
        self.trap = trap

    def read(self, index):
        if self.entries[index][0].endswith(self.trap):
            self.spring()
        return super().read(index)


class StallingSource(TrappedSource):
    """The trapped file takes a minute to read: a worker reading it is busy when killed."""

    def spring(self):
        time.sleep(60)


class CrashingSource(TrappedSource):
    """The trapped file makes the worker reading it exit at once (a crash in a decoder)."""

    def spring(self):
        os._exit(3)
