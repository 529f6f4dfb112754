"""The documentation works as written: every ```python block of README.md and docs/*.md runs, every ``minidl``
command line in README.md parses with the command's own parser, and the guide's example learns.

A block runs in a fresh Python process from the repository root, with this checkout on PYTHONPATH, saved as a file
as a user runs it (a spawned worker process imports that file again). An HTML comment on the line before a block
changes that, and only these two are known:
- ``<!-- not run: REASON -->``: the block needs files the user downloads; it is compiled (its syntax checked) only.
- ``<!-- part of examples/NAME.py -->``: the block is a piece of that example, which holds it verbatim and in the
  guide's order; the example is run whole by its own test.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

from minidl.cli import buildParser
from tests.test_training import ROOT, runExample

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*(not run|part of)\s*:?\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def codeBlocks(path, language):
    """(line, marker, code) of each ```language block of a Markdown file; marker is (kind, argument) from an HTML
    comment on the line before the fence, or None. An unknown comment there is an error, not a silent pass."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = MARKER.fullmatch(before)
        assert marker or not before.startswith("<!--"), f"{path.name}:{line}: unknown marker {before!r}"
        blocks.append((line, marker.groups() if marker else None, match.group(2)))
    return blocks


PYTHON_BLOCKS = [(path, *block) for path in DOCS for block in codeBlocks(path, "python")]


def marked(kind):
    """The blocks with this marker (None: unmarked), as pytest parameters named file:line."""
    return [pytest.param(*item, id=f"{item[0].name}:{item[1]}") for item in PYTHON_BLOCKS
            if (item[2] and item[2][0]) == kind]


def test_the_docs_have_blocks_of_each_kind():  # the parametrized tests below pass vacuously on empty lists
    assert len(marked(None)) >= 3
    assert marked("not run") and marked("part of")


@pytest.mark.parametrize("path, line, marker, code", marked(None))
def test_python_block_runs(path, line, marker, code, tmp_path):
    # TMPDIR: the folders a block makes with tempfile (its images, its exported files) go with the test's own
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TMPDIR": str(tmp_path)}
    script = tmp_path / "block.py"  # run from a file, as a user saves it: a spawned process imports it again
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, f"{path.name}:{line} failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("path, line, marker, code", marked("not run"))
def test_python_block_not_run_says_why_and_compiles(path, line, marker, code):
    assert marker[1], f"{path.name}:{line}: a block that is not run must say why"
    compile(code, f"{path.name}:{line}", "exec")


def test_guide_blocks_are_the_example_verbatim_and_in_order():
    position = {}
    for path, line, (_, example), code in (param.values for param in marked("part of")):
        source = (ROOT / example).read_text()
        found = source.find(code, position.get(example, 0))
        assert found >= 0, f"{path.name}:{line}: not found verbatim in {example} after the previous block"
        position[example] = found + len(code)


def test_the_custom_layer_example_passes_its_checks_and_learns():
    result = runExample("custom_layer.py")
    assert result.returncode == 0, result.stderr
    assert "checks passed: the NumPy reference and the host" in result.stdout
    accuracies = [float(value) for value in re.findall(r"val accuracy (\S+)%", result.stdout)]
    assert len(accuracies) == 5 and accuracies[-1] >= 93.0, result.stdout
    low, mean, high = map(float, re.search(r"learned beta: min (\S+)  mean (\S+)  max (\S+)", result.stdout).groups())
    assert mean > 1.05 and high - low > 0.1, result.stdout  # β, started at 1, learned per feature


# Command lines: in ```bash blocks (continued lines joined, split at && and ;) and in `inline code`; a word
# "a|b|c" in inline code lists alternatives, each parsed in turn.

COMMAND = re.compile(  # a minidl command line (after VAR=value words, under mpiexec -n N), not the word minidl
    r"^(?:\w+=\S*\s+)*(?:\S*mpiexec\s+-n\s+\d+\s+)?(?:\S*/)?(?:python3?\s+-m\s+minidl|minidl)\s+(.*)$"
)


def commandLines(path):
    text = path.read_text()
    lines = []
    for _, _, code in codeBlocks(path, "bash"):
        for line in code.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            command = []
            for token in [*lexer, ";"]:  # quotes respected: a ; inside python -c "..." is no separator
                if token in (";", "&&", "||", "|"):
                    lines.append(" ".join(command))
                    command = []
                else:
                    command.append(token)
    prose = FENCE.sub("", text)
    for span in re.findall(r"`([^`\n]+)`", prose):
        words = span.split()
        variants = [words]
        for index, word in enumerate(words):
            if "|" in word and not word.startswith("-"):
                variants = [variant[:index] + [choice] + variant[index + 1:] for variant in variants
                            for choice in word.split("|")]
        lines += [" ".join(variant) for variant in variants]
    return [match.group(1) for line in lines if (match := COMMAND.search(line))]


README_COMMANDS = commandLines(ROOT / "README.md")


def test_the_readme_has_command_lines():
    assert len(README_COMMANDS) >= 6, README_COMMANDS
    assert "train --model cnn --batch-size 32 --lr 0.05 --schedule cosine --epochs 12 --out runs/cnn" in README_COMMANDS


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_command_line_parses(command, capsys):
    try:
        args = buildParser().parse_args(shlex.split(command))
    except SystemExit:
        pytest.fail(f"minidl {command}: {capsys.readouterr().err.strip()}")
    assert args.command == command.split()[0]
