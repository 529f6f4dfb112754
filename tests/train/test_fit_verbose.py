"""fit prints one line per epoch by default (as minidl train does), nothing with verbose=False, and a mistyped
keyword is reported against the call the user made."""

import re

import pytest

from tests.train.test_fit import DATA, LABELS, VALIDATION, setup

LINE = re.compile(r"epoch +(\d)/3  train error \d\.\d{4}  val error \d\.\d{4}  val accuracy [\d.]+%  "
                  r"val top2 [\d.]+%  lr 0\.1  [\d.]+ s  \d+ samples/s")


def test_fit_prints_one_line_per_epoch_by_default(capsys):
    net, optimizer, trainer = setup(0.1)
    history = trainer.fit(DATA, LABELS, 3, VALIDATION, topK=(2,))
    lines = capsys.readouterr().out.splitlines()
    assert [int(LINE.fullmatch(line).group(1)) for line in lines] == [1, 2, 3], lines
    assert f"val error {history[2]['valError']:.4f}" in lines[2]
    trainer.fit(DATA, LABELS, 4, verbose=False)
    assert capsys.readouterr().out == ""


def test_a_mistyped_keyword_names_the_public_call():
    net, optimizer, trainer = setup(0.1)
    with pytest.raises(TypeError, match=r"Trainer\.fit\(\) got an unexpected keyword argument 'schedul'"):
        trainer.fit(DATA, LABELS, 1, schedul=None)
