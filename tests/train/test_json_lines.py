"""The JSON-lines log is valid JSON on every line, non-finite values included."""

import json

import pytest

from minidl.train import JsonLinesLog


def test_the_json_lines_log_writes_null_for_nan_and_infinity(tmp_path):
    log = JsonLinesLog(tmp_path / "log.jsonl")
    log.file = open(tmp_path / "log.jsonl", "w", encoding="utf-8")
    log.write({"epoch": 1, "trainError": float("nan"), "valError": float("inf"), "learnRate": 0.5})
    log.onFitEnd(None)
    line = (tmp_path / "log.jsonl").read_text()
    strict = json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert strict == {"epoch": 1, "trainError": None, "valError": None, "learnRate": 0.5}
