"""hypothesis is a test-time dependency: ``import minidl`` and its subpackages never import it, and importing
minidl.testing without it names the extra to install."""

import subprocess
import sys

BLOCK_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None; "


def run(code):
    return subprocess.run([sys.executable, "-c", BLOCK_HYPOTHESIS + code], capture_output=True, text=True)


def test_minidl_and_its_subpackages_import_without_hypothesis():
    result = run("import minidl, minidl.nn, minidl.cost, minidl.optim, minidl.train, minidl.backend, minidl.cli; "
                 "assert sys.modules['hypothesis'] is None")
    assert result.returncode == 0, result.stderr


def test_minidl_testing_without_hypothesis_names_the_extra():
    result = run("import minidl.testing")
    assert result.returncode != 0
    assert "minidl.errors.TestingError: minidl.testing needs hypothesis, a test-time dependency: " \
           "pip install 'minidl[test]'" in result.stderr
