"""Where image files come from: a folder tree, a tar or zip archive, or a list file of paths and labels.

Every source lists its samples once, when it is made (``entries``: (name, label) pairs in a fixed order, and
``classes``: the class names, label i naming ``classes[i]``), and reads one sample's bytes by index
(``read(index)``). Sources are pickled into worker processes: a worker opens its own archive handle on its
first read, so no file object crosses a process boundary.

* ``FolderSource(root)``: one subfolder per class, as torchvision's ``ImageFolder``: classes are the
  subfolder names in sorted order, samples every ``.jpg``/``.jpeg``/``.png`` file below a class folder (in
  nested folders too, following symbolic links), sorted by path. Other files are counted in ``ignored``. A
  class folder without an image, or a symbolic-link loop, is a DataError naming it; so is a tree of one class
  folder (most likely the folder holding the classes, one level too high).
* ``TarSource(path)``, ``ZipSource(path)``: the same tree inside an uncompressed tar (read by offset, so
  random access costs one seek; a compressed tar is refused; a hard or symbolic link to a file of the archive
  reads that file) or a zip archive (read through ``zipfile``).
* ``ListSource(path)``: a text file of lines ``relative/or/absolute/path label`` (paths relative to the list
  file's folder; a label is a class name, and the classes are the sorted set of names). A path that names no
  file is a DataError naming its line, when the source is made.

``openSource("folder:PATH")`` (and ``tar:``, ``zip:``, ``list:``) makes the source a command line names.
"""

import os
import posixpath
import tarfile
import zipfile

from minidl.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def isImageName(name):
    return name.lower().endswith(IMAGE_SUFFIXES)


def classifyNames(names, where, folders=()):
    """(entries, classes, ignored) of a tree's file names ("class/.../file") and its top folders (``folders``,
    besides those holding a file): classes are the top folders, sorted, each of which must hold an image;
    entries (name, label) are the image files, sorted by name."""
    byClass, ignored, folders = {}, 0, {folder.strip("/") for folder in folders}
    for name in names:
        parts = name.split("/")
        if len(parts) < 2:
            ignored += 1  # a file beside the class folders
            continue
        folders.add(parts[0])
        if isImageName(name):
            byClass.setdefault(parts[0], []).append(name)
        else:
            ignored += 1
    empty = sorted(folders - set(byClass))
    if empty:
        raise DataError(f"{where}: the class folder {empty[0]!r} holds no .jpg, .jpeg or .png file")
    if not byClass:
        raise DataError(f"{where} holds no class folder with images (expected CLASS/IMAGE.jpg or .png)")
    if len(byClass) == 1:
        raise DataError(f"{where} holds one class folder, {next(iter(byClass))!r}: a classifier needs two or more "
                        "(is the tree one level deeper than CLASS/IMAGE.jpg, an archive of the folder holding the "
                        "classes?)")
    classes = sorted(byClass)
    entries = [(name, label) for label, folder in enumerate(classes) for name in sorted(byClass[folder])]
    return entries, classes, ignored


class ImageSource:
    """The base: ``entries``, ``classes``, ``ignored`` (files that were not images), ``read(index)``,
    ``describe(index)`` (the file, as a user would find it)."""

    kind = ""

    def __init__(self, location, entries, classes, ignored=0):
        self.location, self.entries, self.classes, self.ignored = location, entries, classes, ignored

    def __repr__(self):
        return f"{self.kind}:{self.location}"

    def __len__(self):
        return len(self.entries)

    def labels(self):
        return [label for _, label in self.entries]

    def describe(self, index):
        return f"{self.location}/{self.entries[index][0]}"

    def read(self, index):
        raise NotImplementedError

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("handle", None)  # each process opens the archive itself
        return state


class FolderSource(ImageSource):
    kind = "folder"

    def __init__(self, root):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise DataError(f"folder:{root}: no such folder")
        names, folders = [], []
        for entry in sorted(os.scandir(root), key=lambda entry: entry.name):
            if entry.is_dir():
                folders.append(entry.name)
                names += [f"{entry.name}/{name}" for name in self.walk(entry.path, {os.path.realpath(root)})]
            else:
                names.append(entry.name)
        super().__init__(root, *classifyNames(names, f"folder:{root}", folders))

    def walk(self, folder, above):
        """The files below ``folder``, relative to it; DataError at a link back to a folder it is in."""
        real = os.path.realpath(folder)
        if real in above:
            raise DataError(f"{folder} is a symbolic link loop: it leads back to {real}, a folder it is in")
        try:
            children = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            raise DataError(f"cannot list {folder}: {error}") from error
        names = []
        for child in children:
            try:
                isDir = child.is_dir()
            except OSError as error:  # a link to itself: too many levels of symbolic links
                raise DataError(f"{child.path}: {error.strerror}") from error
            if isDir:
                names += [f"{child.name}/{name}" for name in self.walk(child.path, above | {real})]
            elif child.is_file() or not os.path.islink(child.path):
                names.append(child.name)
            else:
                raise DataError(f"{child.path} is a broken symbolic link")
        return names

    def read(self, index):
        with open(os.path.join(self.location, self.entries[index][0]), "rb") as file:
            return file.read()


class TarSource(ImageSource):
    kind = "tar"

    def __init__(self, path):
        path = os.fspath(path)
        try:
            with open(path, "rb") as file:
                magic = file.read(6)
        except OSError as error:
            raise DataError(f"tar:{path}: {error}") from error
        if magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00":
            raise DataError(f"tar:{path} is compressed: its members cannot be read by offset; unpack it, or "
                            "write an uncompressed tar")
        try:
            archive = tarfile.open(path, "r:")
        except tarfile.TarError as error:
            raise DataError(f"tar:{path}: {error}") from error
        with archive:
            listed = archive.getmembers()
        byName = {member.name.removeprefix("./"): member for member in listed}
        members = {}
        for name, member in byName.items():
            if member.isfile():
                members[name] = member
            elif member.islnk() or member.issym():  # a link's sample is the file it leads to, as in a folder
                members[name] = linkTarget(member, byName)
                if members[name] is None and isImageName(name):
                    raise DataError(f"tar:{path}: {name} is a link to {member.linkname}, which leads to no file of "
                                    "the archive")
        folders = [member.name.removeprefix("./") for member in listed if member.isdir() and "/" not in
                   member.name.removeprefix("./").strip("/") and member.name not in (".", "./")]
        entries, classes, ignored = classifyNames(members, f"tar:{path}", folders)
        self.offsets = {name: (members[name].offset_data, members[name].size) for name, _ in entries}
        super().__init__(path, entries, classes, ignored)

    def read(self, index):
        if getattr(self, "handle", None) is None:
            self.handle = open(self.location, "rb")
        offset, size = self.offsets[self.entries[index][0]]
        self.handle.seek(offset)
        return self.handle.read(size)


def linkTarget(member, byName):
    """The regular member of a tar archive that the link ``member`` (hard or symbolic, through other links) leads
    to, or None when it leads outside the archive, to a folder or round in a loop."""
    seen = set()
    while member is not None and (member.islnk() or member.issym()) and member.name not in seen:
        seen.add(member.name)
        target = member.linkname if member.islnk() else \
            posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        member = byName.get(target.removeprefix("./"))
    return member if member is not None and member.isfile() else None


class ZipSource(ImageSource):
    kind = "zip"

    def __init__(self, path):
        path = os.fspath(path)
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
        except (OSError, zipfile.BadZipFile) as error:
            raise DataError(f"zip:{path}: {error}") from error
        names = [info.filename for info in infos if not info.is_dir()]
        folders = [info.filename for info in infos if info.is_dir() and "/" not in info.filename.strip("/")]
        super().__init__(path, *classifyNames(names, f"zip:{path}", folders))

    def read(self, index):
        if getattr(self, "handle", None) is None:
            self.handle = zipfile.ZipFile(self.location)
        return self.handle.read(self.entries[index][0])


class ListSource(ImageSource):
    kind = "list"

    def __init__(self, path):
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"list:{path}: {error}") from error
        pairs = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                raise DataError(f"list:{path} line {number}: expected 'PATH LABEL', got {line!r}")
            pairs.append((parts[0], parts[1]))
            if not os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)), parts[0])):
                raise DataError(f"list:{path} line {number}: no image file {parts[0]!r}")  # not mid-run
        if not pairs:
            raise DataError(f"list:{path} names no image")
        classes = sorted({label for _, label in pairs})
        entries = [(name, classes.index(label)) for name, label in pairs]
        super().__init__(os.path.dirname(os.path.abspath(path)), entries, classes)
        self.listFile = path

    def __repr__(self):
        return f"list:{self.listFile}"

    def describe(self, index):
        return os.path.join(self.location, self.entries[index][0])

    def read(self, index):
        with open(self.describe(index), "rb") as file:
            return file.read()


SOURCES = {"folder": FolderSource, "tar": TarSource, "zip": ZipSource, "list": ListSource}


def openSource(text):
    """The source ``KIND:PATH`` names (KIND one of folder, tar, zip, list)."""
    kind, colon, path = text.partition(":")
    if not colon or kind not in SOURCES or not path:
        raise DataError(f"expected an image source as KIND:PATH with KIND one of {', '.join(SOURCES)}, got {text!r}")
    return SOURCES[kind](path)
