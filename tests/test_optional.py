"""tests/optional.py: a test oracle or tool that does not import skips its tests with the reason and the extra that
brings it, and fails them under the MINIDL_REQUIRE_* variable .ci/run sets (so CI never reports them as skips)."""

import sys

import pytest

from tests.optional import importCupy, importSafetensorsTorch, importTorch

CASES = [(importTorch, "torch", "MINIDL_REQUIRE_TORCH", "torch-oracle"),
         (importSafetensorsTorch, "torch", "MINIDL_REQUIRE_TORCH", "torch-oracle"),
         (importCupy, "cupy", "MINIDL_REQUIRE_CUPY", "cupy-compile")]


@pytest.mark.parametrize("load, module, variable, extra", CASES, ids=[case[0].__name__ for case in CASES])
def test_a_missing_package_skips_with_its_extra_and_fails_where_required(monkeypatch, load, module, variable, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(pytest.skip.Exception, match=rf"does not import here .*pip install -e '\.\[{extra}\]'"):
        load()
    monkeypatch.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"pip install -e '\.\[{extra}\]' brings it \({variable}=1\)"):
        load()


def test_the_extras_ci_installs_are_declared_and_minidl_needs_neither():
    from configparser import ConfigParser

    from tests.test_training import ROOT

    config = ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    assert extras["torch-oracle"].split() == ["torch==2.13.0"]
    assert [line.split("==")[0] for line in extras["cupy-compile"].split()] == ["cupy-cuda12x",
                                                                              "nvidia-cuda-nvrtc-cu12"]
    requires = config["options"]["install_requires"]
    assert "torch" not in requires and "cupy" not in requires
    assert "cupy" not in extras["test"] and "torch" not in extras["test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "'.[test,torch-oracle,cupy-compile]'" in ci and "MINIDL_REQUIRE_TORCH=1 MINIDL_REQUIRE_CUPY=1" in ci
