"""The measured time of the training step ``minidl profile`` counts, on the backend in use (the GPU when one
answers): the same model, batch and optimizer, a warm-up step, then the median of ``--repeats`` timed steps,
each ended by a device synchronize; then the same step as training runs it, captured and replayed (three calls
before the first replay, then the median likewise). ``benchmarks.gpu_check`` puts both beside the simulated
device's predictions.

    python -m benchmarks.step_time --model resnet18 --batch-size 32 --input 3x32x32 [--repeats 20] [--json FILE]
"""

import argparse
import json
import statistics
import sys
import time

from minidl import backend
from minidl.cli.profile import classifyStep, parseShape
from minidl.models import MODELS


def measure(step, repeats, warmUp=1):
    """The median seconds of ``repeats`` calls of ``step()`` after ``warmUp`` calls, each synchronized."""
    for _ in range(warmUp):
        step()
    backend.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        backend.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input", type=parseShape, metavar="CxHxW")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    step, title = classifyStep(args.model, args.batch_size, args.input)
    seconds = measure(step, args.repeats)
    replayed = measure(classifyStep(args.model, args.batch_size, args.input, capture=True)[0], args.repeats, warmUp=3)
    print(f"{title} on {backend.name}: {seconds * 1e3:.3f} ms per training step, replayed {replayed * 1e3:.3f} ms "
          f"(medians of {args.repeats})")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"seconds": seconds, "replayedSeconds": replayed, "backend": backend.name, "title": title}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
