"""Images per second from JPEG files into the training step: minidl's ImagePipeline against PyTorch's DataLoader.

The script writes its own JPEGs (quality 90, 10 classes of noisy colour fields) to a temporary folder: ``--images``
CIFAR-sized ones (32x32, decoded at 32) and ``--large`` ImageNet-sized ones (320x256, decoded at 224). Both
frameworks read the same files with the same work per image: decode, a random resized crop (area 35-100 %) to
the output size with bilinear filtering, a left-right flip, uint8 batches of ``--batch``, then float32
normalised on the device (minidl: its convert-and-normalise kernel; PyTorch: torchvision's ``ToTensor`` +
``Normalize`` arithmetic on the batch, written out with Pillow and torch, torchvision not needed). PyTorch's
``DataLoader`` uses its default start method, shuffles, and keeps its workers between epochs, as minidl does.
One difference is minidl's own: it decodes a JPEG much larger than its crop at a reduced DCT scale (Pillow's
``draft``), where torchvision's loader decodes every pixel.

Table 1: the pipeline alone, one epoch after an untimed one (which starts the workers), with 0, 1 and 2 workers.
Table 2: the residual CNN of ``benchmarks.residual_step`` (batch 32, Adam) trained on the 32x32 images, fed from
memory (the decoded batches held on the device) and fed by the pipeline with 0, 1 and 2 workers: whether the
pipeline keeps up with the step, on a machine whose cores the workers share with it. The last column is the time
a step waited for its batch (the pipeline keeps up when that is near 0; what the images per second lose beside it is
the CPU the decoding takes from the step's own threads on the shared cores).

Each measurement runs in a process of its own (``timing.runWorkers``), ``--rounds`` times, alternating; a row
gives the median. Timings need a quiet machine.

    python -m benchmarks.data_pipeline [--images 2048] [--large 256] [--batch 32] [--rounds 3] [--steps 64]
"""

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy

from benchmarks.timing import machine, runWorkers

CLASSES, WORKERS, MEAN, STD = 10, (0, 1, 2), 0.5, 0.25
SETS = {"cifar": (32, (32, 32)), "large": (224, (256, 320))}  # name: (output side, (height, width) written)
SCALE = (0.35, 1.0)


def writeImages(folder, count, shape):
    from PIL import Image

    rng = numpy.random.default_rng(0)
    colours = rng.integers(30, 226, (CLASSES, 3))
    for index in range(count):
        label = index % CLASSES
        os.makedirs(os.path.join(folder, f"class{label}"), exist_ok=True)
        pixels = numpy.clip(colours[label] + rng.normal(0, 40, (*shape, 3)), 0, 255).astype(numpy.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"class{label}", f"{index:06d}.jpg"), quality=90)


def minidlPipeline(folder, side, batch, workers):
    from minidl.datasets.imageaugment import ImageAugment
    from minidl.datasets.imagedecode import ImageDecoder
    from minidl.datasets.imageloader import ImagePipeline
    from minidl.datasets.imagesources import openSource

    source = openSource(f"folder:{folder}")
    pipeline = ImagePipeline(source, ImageDecoder(side), batch, ImageAugment(scale=SCALE, flip=True), seed=0,
                             workers=workers)
    return pipeline, pipeline.loader(numpy.arange(len(source)), train=True)


class FolderDataset:
    """torchvision's ImageFolder + RandomResizedCrop(side, SCALE) + RandomHorizontalFlip + PILToTensor, written
    with Pillow and torch: its draws come from torch's generator, as torchvision's do (one try at the crop box)."""

    def __init__(self, folder, side):
        self.side = side
        classes = sorted(os.listdir(folder))
        self.samples = [(os.path.join(folder, name, file), label) for label, name in enumerate(classes)
                        for file in sorted(os.listdir(os.path.join(folder, name)))]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        import math

        import torch
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        width, height = image.size
        area = width * height * (SCALE[0] + (SCALE[1] - SCALE[0]) * float(torch.rand(1)))
        ratio = math.exp(math.log(3 / 4) + math.log(16 / 9) * float(torch.rand(1)))
        boxWidth, boxHeight = min(width, math.sqrt(area * ratio)), min(height, math.sqrt(area / ratio))
        left, top = float(torch.rand(1)) * (width - boxWidth), float(torch.rand(1)) * (height - boxHeight)
        image = image.resize((self.side, self.side), Image.BILINEAR, box=(left, top, left + boxWidth, top + boxHeight))
        if float(torch.rand(1)) < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return torch.from_numpy(numpy.asarray(image).copy()).permute(2, 0, 1), label


def normalise(images):
    """torchvision's ToTensor + Normalize(MEAN, STD) on a uint8 batch."""
    return images.float().div_(255).sub_(MEAN).div_(STD)


def torchLoader(folder, side, batch, workers):
    import torch

    return torch.utils.data.DataLoader(FolderDataset(folder, side), batch_size=batch, shuffle=True,
                                       num_workers=workers, persistent_workers=workers > 0)


def pipelineWorker(framework, args):
    """Seconds of one epoch of device batches, after an untimed one."""
    if framework == "minidl":
        from minidl import backend

        pipeline, loader = minidlPipeline(args.folder, args.side, args.batch, args.workers)
        with pipeline:
            for _ in loader.deviceBatches(0):
                pass
            start = time.perf_counter()
            for _ in loader.deviceBatches(1):
                pass
            backend.synchronize()
            seconds = time.perf_counter() - start
        return {"seconds": seconds, "images": len(loader)}
    import torch

    loader = torchLoader(args.folder, args.side, args.batch, args.workers)
    for images, _ in loader:
        normalise(images)
    start = time.perf_counter()
    for images, _ in loader:
        normalise(images)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": len(loader.dataset), "version": torch.__version__}


def trainWorker(feed, args):
    """Seconds of ``--steps`` training steps of the residual CNN fed from memory or by the pipeline."""
    from benchmarks.residual_step import minidlSetup
    from minidl import backend
    from minidl.cost import CrossEntropy

    net, _, optimizer = minidlSetup()
    cost = CrossEntropy()
    pipeline, loader = minidlPipeline(args.folder, 32, 32, 0 if feed == "memory" else int(feed))

    def batches():
        epoch = 0
        while True:
            yield from loader.deviceBatches(epoch)
            epoch += 1

    def step(images, labels):
        _, grad = cost(net(images), labels)
        optimizer.zeroGradParams()
        net.backward(grad, updGrad=False)
        optimizer.update()

    with pipeline:
        if feed == "memory":
            held = [(images.copy(), labels.copy()) for images, labels in loader.deviceBatches(0)]
            source = (held[index % len(held)] for index in range(10**9))
        else:
            source = batches()
        for _ in range(4):  # warm-up: kernels compiled, workers started
            step(*next(source))
        backend.synchronize()
        waited = 0.0
        start = time.perf_counter()
        for _ in range(args.steps):
            asked = time.perf_counter()
            batch = next(source)
            waited += time.perf_counter() - asked
            step(*batch)
        backend.synchronize()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": 32 * args.steps, "waited": waited / args.steps}


def median(runs):
    return float(numpy.median([run["images"] / run["seconds"] for run in runs]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="32x32 JPEGs to write (default: 2048)")
    parser.add_argument("--large", type=int, default=256, help="320x256 JPEGs to write (default: 256)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="processes per measurement, alternating")
    parser.add_argument("--steps", type=int, default=64, help="timed training steps in table 2 (default: 64)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, _, name = args.worker.partition(":")
        print(json.dumps(pipelineWorker(name, args) if kind == "pipeline" else trainWorker(name, args)))
        return
    try:
        import torch  # noqa: F401

        frameworks = ["minidl", "torch"]
    except ImportError:
        frameworks = ["minidl"]
    root = tempfile.mkdtemp(prefix="minidl-data-pipeline-")
    try:
        counts = {"cifar": args.images, "large": args.large}
        for name, (_, shape) in SETS.items():
            writeImages(os.path.join(root, name), counts[name], shape)
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}; each measurement in its own process, "
              f"{args.rounds} rounds, median\n")
        print(f"Pipeline alone: JPEG → random resized crop, flip → float32 batches of {args.batch} on the device, "
              f"images per second\n")
        header = "| images | workers | minidl |"
        if "torch" in frameworks:
            header += " PyTorch DataLoader | minidl / PyTorch |"
        print(header + "\n|" + "---|" * (header.count("|") - 1))
        for name, (side, shape) in SETS.items():
            folder = os.path.join(root, name)
            for workers in WORKERS:
                common = ["--folder", folder, "--side", str(side), "--workers", str(workers), "--batch",
                          str(args.batch)]
                results = runWorkers("benchmarks.data_pipeline", [f"pipeline:{f}" for f in frameworks], args.rounds,
                                     common)
                rates = {f: median(results[f"pipeline:{f}"]) for f in frameworks}
                row = f"| {counts[name]} of {shape[1]}x{shape[0]} → {side} | {workers} | {rates['minidl']:,.0f} |"
                if "torch" in rates:
                    row += f" {rates['torch']:,.0f} | {rates['minidl'] / rates['torch']:.2f} |"
                print(row, flush=True)
        print(f"\nResidual CNN (benchmarks.residual_step) on the 32x32 images, batch 32, {args.steps} steps, "
              "images per second\n")
        print("| fed | images/s | of the in-memory rate | ms per step waiting for the batch |\n|---|---:|---:|---:|")
        feeds = ["memory", *map(str, WORKERS)]
        results = runWorkers("benchmarks.data_pipeline", [f"train:{feed}" for feed in feeds], args.rounds,
                             ["--folder", os.path.join(root, "cifar"), "--steps", str(args.steps)])
        memory = median(results["train:memory"])
        for feed in feeds:
            rate = median(results[f"train:{feed}"])
            label = "from memory (decoded batches on the device)" if feed == "memory" else \
                f"by the pipeline, {feed} workers"
            waited = float(numpy.median([run["waited"] for run in results[f"train:{feed}"]]))
            print(f"| {label} | {rate:,.0f} | {rate / memory:.0%} | {1000 * waited:.2f} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
