"""The cost of parameter digests against a training epoch: the command's CNN on the digits (1442 training images,
batch 128, AdaGrad, global state), one epoch's median time against one ``parameterDigests`` call's (the kernel over
the parameters and state, the 8 KiB of lanes to the host, SHA-256 there), and the share of an epoch that one digest
per epoch (the default) and one per step cost.

    python -m benchmarks.digest_cost [--repeats 5]
"""

import argparse
import time

from benchmarks.timing import machine, medianSeconds
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.models import MODELS
from minidl.optim import AdaGrad
from minidl.train import Trainer, parameterDigests

BATCH = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    digits = loadDigits(flat=False)
    backend.seed(0)
    net = MODELS["cnn"].build(digits.trainData.shape[1:], digits.classes)
    optimizer = AdaGrad(learnRate=0.01).setupOn(net, useGlobalState=True)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=BATCH, verbose=False)
    epochs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        trainer.trainFromHost(digits.trainData, digits.trainLabels)
        backend.synchronize()
        epochs.append(time.perf_counter() - start)
    epoch = sorted(epochs)[len(epochs) // 2]
    digest = medianSeconds(lambda: parameterDigests(optimizer), repeats=20 * args.repeats)
    steps = -(-len(digits.trainData) // BATCH)
    print(f"digest cost, {machine()}, {backend.name}: cnn on digits, {net.numOfParams()} parameters, "
          f"{steps} steps per epoch")
    print(f"| epoch | one digest | per epoch (default) | per step |\n|---|---|---|---|\n"
          f"| {epoch * 1e3:.1f} ms | {digest * 1e3:.3f} ms | {100 * digest / epoch:.2f} % | "
          f"{100 * steps * digest / epoch:.1f} % |")


if __name__ == "__main__":
    main()
