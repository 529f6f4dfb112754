"""README.md's module table lists every module of ``minidl.nn.__all__``, and nothing else."""

import re

import minidl.nn
from tests.test_training import ROOT


def tableNames():
    """The names in the first column of the table under README.md's "## Modules" heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in re.findall(r"^\| (.+?) \|", section, re.M)[1:]:  # past the header (the rule below it has no spaces)
        names.extend(re.findall(r"`(\w+)`", row))
    return names


def moduleNames():
    return {name for name in minidl.nn.__all__
            if isinstance(getattr(minidl.nn, name), type) and issubclass(getattr(minidl.nn, name), minidl.nn.Module)}


def test_the_readme_table_lists_every_module():
    listed = tableNames()
    missing = sorted(moduleNames() - set(listed))
    assert not missing, f"README.md's module table (## Modules) lacks a row for: {', '.join(missing)}"
    unknown = sorted(set(listed) - moduleNames())
    assert not unknown, f"README.md's module table names what minidl.nn.__all__ has no module of: {unknown}"
    assert len(listed) == len(set(listed)), "a module is listed twice"
