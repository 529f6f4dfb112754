"""benchmarks.timing.reportRepeats times the device's work: it synchronises the device before starting the clock
and before reading it, so a GPU repeat does not time only the launches of its queued steps."""

import json

from benchmarks import timing


def test_each_repeat_waits_for_the_device_before_the_clock_starts_and_before_it_is_read(monkeypatch, capsys):
    events = []
    monkeypatch.setattr(timing.backend, "synchronize", lambda: events.append("sync"))
    ticks = iter(range(100))

    def clock():
        events.append("clock")
        return float(next(ticks))

    timing.reportRepeats(lambda: events.append("steps"), count=2, repeats=2, about={"who": "test"}, clock=clock)
    first = ["sync", "clock", "steps", "sync"]  # the untimed warm-up repeat reads no second time
    timed = ["sync", "clock", "steps", "sync", "clock"]
    assert events == first + timed + timed
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == {"seconds": [0.5, 0.5], "who": "test"}  # (clock after - clock before) / count, per repeat
