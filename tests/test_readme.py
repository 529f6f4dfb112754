"""The README's and the guides' shell lines work as written, in order: a new user's first hour, replayed.

Every line of every ```bash block of README.md, then of docs/*.md, runs verbatim with bash, one after the
other, in a temporary copy of the repository (so each line finds what the lines before it wrote). Only what
sets up the machine is stood in for, by programs first on PATH:
- ``python3 -m venv .venv`` makes a .venv whose ``bin/python`` runs this test's interpreter (whose environment
  has every extra the lines install);
- ``.venv/bin/pip install -e '.[EXTRAS]'`` checks that each extra is declared in setup.cfg and that each package
  it lists is installed here, then links the programs of this environment's bin (mpiexec and its proxy,
  tensorboard, minidl, ...) into .venv/bin.
HOME is a temporary folder holding small stand-ins of the downloaded data sets the lines read (~/data/...).
``minidl train`` runs capped by MINIDL_MAX_EPOCHS and MINIDL_MAX_SAMPLES (minidl/cli/limits.py): the lines run
as written, on less data. A block marked ``<!-- not run: REASON -->`` is left out (a GPU, the test suite itself).
"""

import gzip
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy

from tests.test_docs import codeBlocks
from tests.test_training import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CAPS = {"MINIDL_MAX_EPOCHS": "1", "MINIDL_MAX_SAMPLES": "64"}
CAPS_OF = {  # the lines that need more than CAPS, found by a piece of their text: why, and their caps
    "mpiexec -n 2": {"MINIDL_MAX_SAMPLES": "256"},  # a batch of 128 on each of the 2 ranks
    "--warmup 1": {"MINIDL_MAX_EPOCHS": "2"},  # an epoch after the warmup
}


def shellLines(path):
    """(line number, command) of each logical line (continuations joined) of the unmarked ```bash blocks, and
    the (line number, reason) of each marked one."""
    lines, notRun = [], []
    for start, marker, code in codeBlocks(path, "bash"):
        if marker is not None:
            assert marker[0] == "not run" and marker[1], f"{path.name}:{start}: a bash block can only be 'not run: WHY'"
            notRun.append((start, marker[1]))
            continue
        pending = None  # (line number, text so far) of a line continued with a backslash
        for offset, line in enumerate(code.split("\n")):
            number, text = pending or (start + 1 + offset, "")
            text, pending = text + line.strip(), None
            if text.endswith("\\"):
                pending = (number, text[:-1])
            elif text and not text.startswith("#"):
                lines.append((number, text))
    return lines, notRun


def trainOut(command):
    """The --out of each ``minidl train`` in a shell line ('runs' when it has none)."""
    outs = []
    for part in re.split(r"&&|;", command):
        words = shlex.split(part, comments=True)
        if "minidl" in words and "train" in words[words.index("minidl"):]:
            outs.append(words[words.index("--out") + 1] if "--out" in words else "runs")
    return outs


def test_each_documented_train_line_has_its_own_out_folder():
    outs = [out for path in DOCS for _, command in shellLines(path)[0] for out in trainOut(command)]
    assert len(outs) >= 7, outs
    assert len(set(outs)) == len(outs), f"two train lines share a --out (the second would be refused): {outs}"


def test_what_is_not_replayed_says_why_and_is_only_the_gpu_the_suite_and_the_users_own_files():
    reasons = [reason for path in DOCS for _, reason in shellLines(path)[1]]
    assert reasons and all(re.search(r"GPU|the test suite|your own", reason) for reason in reasons), reasons


STAND_IN_PYTHON3 = """#!{python}
import os, sys
if sys.argv[1:] != ["-m", "venv", ".venv"]:
    sys.exit(f"the replay's python3 stands in for `python3 -m venv .venv` only, got {{sys.argv[1:]}}")
os.makedirs(".venv/bin", exist_ok=True)
with open(".venv/bin/python", "w") as wrapper:
    wrapper.write('#!/bin/sh\\nexec {python} "$@"\\n')
os.chmod(".venv/bin/python", 0o755)
os.symlink({pip!r}, ".venv/bin/pip")
"""

STAND_IN_PIP = """#!{python}
import configparser, importlib.metadata, os, re, sys
args = sys.argv[1:]
match = re.fullmatch(r"\\.\\[([\\w,-]+)\\]", args[2]) if len(args) == 3 and args[:2] == ["install", "-e"] else None
if not match:
    sys.exit(f"the replay's pip stands in for `pip install -e '.[EXTRAS]'` only, got {{args}}")
config = configparser.ConfigParser()
config.read("setup.cfg")
extras = config["options.extras_require"]
for extra in match.group(1).split(","):
    if extra not in extras:
        sys.exit(f"setup.cfg declares no extra {{extra!r}}: {{sorted(extras)}}")
    for requirement in extras[extra].split():
        name = re.match(r"[\\w.-]+", requirement).group(0)
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{{name}} of the extra {{extra!r}} is not installed where this replay runs")
for program in os.listdir({bin!r}):
    if not re.match(r"python|pip|activate", program) and not os.path.lexists(".venv/bin/" + program):
        os.symlink(os.path.join({bin!r}, program), ".venv/bin/" + program)
"""


def writeIdx(path, array):
    """An IDX file (MNIST's format) of uint8 ``array``: zero, zero, type 0x08, the rank, the sizes, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(numpy.uint8).tobytes())


def fakeHome(home):
    """A HOME with ~/data/fashion-mnist: the four gzipped IDX files of a small random stand-in of Fashion-MNIST."""
    folder = home / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(0)
    for part, count in (("train", 96), ("t10k", 32)):
        writeIdx(folder / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        writeIdx(folder / f"{part}-labels-idx1-ubyte.gz", numpy.arange(count) % 10)


def test_the_readme_and_guides_replay_in_order(tmp_path):
    copy = tmp_path / "minidl"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", "*.egg-info",
                                                              ".pytest_cache", ".hypothesis", ".ruff_cache"))
    standIns = tmp_path / "bin"
    standIns.mkdir()
    python, binFolder = sys.executable, os.path.dirname(sys.executable)
    for name, text in (("python3", STAND_IN_PYTHON3), ("venv-pip", STAND_IN_PIP)):
        (standIns / name).write_text(text.format(python=python, pip=str(standIns / "venv-pip"), bin=binFolder))
        (standIns / name).chmod(0o755)
    fakeHome(tmp_path / "home")
    home = Path.home()
    env = {**os.environ, **CAPS, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(copy),
           "PATH": os.pathsep.join([str(standIns), os.environ["PATH"]]),
           # what the real HOME keeps between runs: the compiled CPU kernels, matplotlib's font cache
           "MINIDL_CACHE_DIR": os.environ.get("MINIDL_CACHE_DIR", str(home / ".cache" / "minidl")),
           "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", str(home / ".cache" / "matplotlib"))}
    ran = []
    for path in DOCS:
        for number, command in shellLines(path)[0]:
            start = time.perf_counter()
            caps = {name: value for piece, more in CAPS_OF.items() if piece in command for name, value in more.items()}
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=copy, env={**env, **caps},
                                    capture_output=True, text=True, timeout=180)
            assert result.returncode == 0, (f"{path.name}:{number} failed ({result.returncode}): {command}\n"
                                            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
            said = ("minidl: MINIDL_MAX_", "minidl: compiling CPU kernels",  # the caps, a cold kernel cache, and on
                    "minidl: 2 ranks average gradients over MPI through the host")  # the simulated device, its GPU
            unexpected = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(said)]
            assert not unexpected, f"{path.name}:{number} wrote to stderr: {command}\n{result.stderr[-3000:]}"
            ran.append((f"{path.name}:{number}", round(time.perf_counter() - start, 1)))
            print(*ran[-1], "s", command[:100])
    assert len(ran) >= 12, ran
    # what the lines and the text around them promise
    assert (copy / "curves.png").stat().st_size > 0 and (copy / "fashion.png").stat().st_size > 0
    for out in {out for path in DOCS for _, command in shellLines(path)[0] for out in trainOut(command)}:
        assert (copy / out / "checkpoint.safetensors").is_file(), out
    tensorboard = re.search(r"`--tensorboard` writes .*?--logdir (\S+?)`", (ROOT / "README.md").read_text(),
                            re.S).group(1)
    assert any((copy / tensorboard).glob("events.out.tfevents.*")), f"the README's --logdir {tensorboard} is empty"
