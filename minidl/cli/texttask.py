"""The text task of ``minidl train --task text`` and the ``minidl sample`` command.

Training: a character-level language model (``--model lstm`` or ``transformer``) on ``--text FILE`` or, by
default, a fixed set of standard-library source files (minidl.datasets.text). An epoch is ``--windows``
windows of WINDOW characters drawn at random from the training part (not the whole corpus); after each,
the loss on a fixed set of held-out windows is printed in nats and in bits per character (nats / ln 2),
a digest line is logged and the checkpoint is written with what sampling needs (model, options, vocabulary) in
its ``extra``; the run's manifest identifies the text by its codes and vocabulary (``minidl verify``).

Sampling: from the checkpoint, each next character is drawn from softmax(scores / temperature) of the model
run on the last WINDOW characters (the longest context it was trained on).
"""

import functools
import math
import os

import numpy

from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.cli.checks import applyLearnRate
from minidl.cli.limits import capSamples
from minidl.cost import CrossEntropy
from minidl.datasets.text import CharCodec, CharCorpus, evenWindows, randomWindows, stdlibText
from minidl.errors import CheckpointError, DataError
from minidl.models import LANGUAGE_MODELS
from minidl.networkfile import loadNetwork
from minidl.nn.architecture import METADATA_KEY
from minidl.nn.module import evaluating
from minidl.tensorfile import TensorFile, copyTensors, readTensors
from minidl.train.capturedstep import CapturedStep, ordinaryStep
from minidl.train.checkpoint import CHECKPOINT_FORMAT, readCheckpointSummary
from minidl.train.compare import DIGESTS_NAME, MANIFEST_NAME
from minidl.train.digestlog import Digests
from minidl.train.manifest import makeManifest, writeManifest

WINDOW = 64  # characters per training window, and the context when sampling
HELD_OUT_WINDOWS = 64
MODEL_OPTIONS = {  # per model: small enough that an epoch of the defaults takes seconds on 2 cores
    "lstm": {"embed": 32, "hidden": 128},
    "transformer": {"embed": 64, "heads": 4, "layers": 2, "maxLength": WINDOW},
}


def buildModel(name, vocabulary, options):
    return LANGUAGE_MODELS[name](vocabulary, **options)


def heldOutLoss(net, corpus):
    """Mean cross-entropy (nats per character) over HELD_OUT_WINDOWS fixed windows of the held-out text."""
    inputs, targets = evenWindows(corpus.heldOut, HELD_OUT_WINDOWS, WINDOW)
    cost = CrossEntropy()
    with evaluating(net):
        for start in range(0, HELD_OUT_WINDOWS, 16):
            batch = slice(start, start + 16)
            cost.validate(net(toDevice(inputs[:, batch].copy())), toDevice(targets[:, batch].reshape(-1)))
    return cost.getMeanError()


def trainText(args, makeOptimizer, saveCheckpoint, loadCheckpoint, checkpointPath, say):
    """Run the text task; ``args`` are ``minidl train``'s (model, optimizer, lr, epochs, batch_size, windows,
    text, sample, prompt, temperature, resume)."""
    saved = resumedSettings(checkpointPath, args) if args.resume else None
    if args.model not in LANGUAGE_MODELS:
        raise DataError(f"--task text trains a language model: --model {' or '.join(sorted(LANGUAGE_MODELS))}, "
                        f"got {args.model}")
    if args.windows < args.batch_size:
        raise DataError(f"--windows ({args.windows}) must be at least --batch-size ({args.batch_size})")
    if args.text == "":
        raise DataError("--text '' names no file: give the path of a UTF-8 text file, or leave --text out to train "
                        "on the standard-library text")
    corpus = CharCorpus.fromFile(args.text) if args.text is not None else CharCorpus(stdlibText())
    if len(corpus.train) <= WINDOW or len(corpus.heldOut) <= WINDOW:
        raise DataError(f"the text must be long enough for windows of {WINDOW} characters in both its training "
                        f"part and its held-out tenth: got {len(corpus.train) + len(corpus.heldOut)} characters")
    if args.prompt:
        corpus.encode(args.prompt)  # a prompt outside the vocabulary is refused before training
    if not args.temperature > 0:  # refused before training, not by --sample after it
        raise DataError(f"--temperature must be positive, got {args.temperature}")
    if saved is not None and saved.get("vocabulary") != "".join(corpus.vocabulary):
        raise CheckpointError(f"{checkpointPath} was trained on a text of other characters than "
                              f"{args.text or 'the standard-library text'}: its codes would stand for other "
                              "characters; resume with the run's --text, or pass --overwrite to start a new run")
    args.seed = 0 if args.seed is None else args.seed
    options = MODEL_OPTIONS[args.model]
    net = buildModel(args.model, len(corpus.vocabulary), options)
    optimizer = makeOptimizer(args.optimizer, args.lr).setupOn(net, useGlobalState=True)
    cost = CrossEntropy()
    done, history = 0, []
    if args.resume:
        checkpoint = loadCheckpoint(checkpointPath, net, optimizer)
        done, history = checkpoint.epoch, list(checkpoint.extra.get("history", []))[:checkpoint.epoch]
        say(f"resumed from {checkpointPath} after epoch {done}")
        if args.lr is not None:  # over the rate the checkpoint restored
            applyLearnRate(optimizer, args.lr)
            say(f"resuming with --lr {args.lr:g}")
    steps = max(1, capSamples(args.windows, "windows per epoch") // args.batch_size)
    say(f"{args.model} on {args.text or 'the standard-library text'} ({len(corpus.train)} training, "
        f"{len(corpus.heldOut)} held-out characters, {len(corpus.vocabulary)} symbols), {net.numOfParams()} "
        f"parameters, {steps} steps of {args.batch_size} windows of {WINDOW} per epoch, {backend.name}")
    extra = {"task": "text", "model": args.model, "options": options, "vocabulary": "".join(corpus.vocabulary),
             "seed": args.seed}
    digests = recordRun(args, corpus, os.path.dirname(checkpointPath), optimizer.t)
    try:
        trainEpochs(args, net, optimizer, cost, corpus, steps, done, history, extra, digests, saveCheckpoint,
                    checkpointPath, say)
    finally:
        digests.close()
    say(f"checkpoint: {checkpointPath}")
    if args.sample:
        say(generate(net, corpus, args.prompt or "\n", args.sample, args.temperature, backend.generator()))
    return 0


def resumedSettings(path, args):
    """The extra entry of the text-task checkpoint at ``path`` (CheckpointError for another checkpoint), with
    ``args.model``, ``args.optimizer`` and ``args.seed`` left out taken from it. A flag that contradicts the
    checkpoint is refused: another model does not fit its tensors, and another seed would change nothing (the
    resumed run draws on from the checkpoint's random state). The vocabulary is compared by the caller: the
    model's codes are indices into it, which another text gives other characters."""
    summary = readCheckpointSummary(path)
    extra = summary.extra
    if not isinstance(extra, dict) or extra.get("task") != "text":
        raise CheckpointError(f"{path} is not a checkpoint of the text task (minidl train --task text)")
    saved = {"model": extra.get("model"), "seed": extra.get("seed"), "optimizer": summary.optimizer.lower()}
    for name, value in saved.items():
        given = getattr(args, name)
        if value is not None and given is not None and given != value:
            raise CheckpointError(f"--{name} {given} contradicts the checkpoint {path}, whose run has --{name} "
                                  f"{value}: leave the flag out to resume it, or pass --overwrite to start a new run")
        setattr(args, name, value if given is None else given)
    return extra


def recordRun(args, corpus, folder, step):
    """Write the run's manifest (its data: the text's codes and vocabulary) and open its digest log at ``step``
    (see ``minidl verify``)."""
    settings = {name: value for name, value in sorted(vars(args).items())
                if value is None or isinstance(value, (bool, int, float, str))}
    vocabulary = numpy.array([ord(symbol) for symbol in corpus.vocabulary], dtype=numpy.int32)
    writeManifest(os.path.join(folder, MANIFEST_NAME), makeManifest(settings, args.seed, {
        "textTrain": corpus.train, "textHeldOut": corpus.heldOut, "vocabulary": vocabulary}))
    digests = Digests(os.path.join(folder, DIGESTS_NAME))
    digests.start(step)
    return digests


def trainEpochs(args, net, optimizer, cost, corpus, steps, done, history, extra, digests, saveCheckpoint,
                checkpointPath, say):
    """The epochs after ``done`` up to --epochs: steps (captured and replayed unless --no-capture), held-out loss,
    digests, checkpoint, a line each."""
    step = (CapturedStep(net, cost, optimizer) if args.capture else
            functools.partial(ordinaryStep, net, cost, optimizer))
    for epoch in range(done + 1, args.epochs + 1):
        cost.resetAccumulator()
        with optimizer.deferGuard():  # no sync in a step: the guard is read at the end of the epoch
            for _ in range(steps):
                trainingStep(step, corpus, args.batch_size)
        backend.readChecks()
        trainLoss, loss = cost.getMeanError(), heldOutLoss(net, corpus)
        history.append({"epoch": epoch, "trainLoss": trainLoss, "heldOutLoss": loss, "bitsPerChar": loss / math.log(2)})
        digests.append(optimizer, epoch)
        saveCheckpoint(checkpointPath, net, optimizer, epoch, extra={**extra, "history": history})
        say(f"epoch {epoch:3d}/{args.epochs}  train loss {trainLoss:.4f}  held-out loss {loss:.4f}  "
            f"bits/char {loss / math.log(2):.3f}", flush=True)


def trainingStep(step, corpus, batchSize):
    """One ``step`` (a ``CapturedStep``, or its ``ordinary``) on ``batchSize`` windows drawn at random from the
    training text."""
    inputs, targets = randomWindows(corpus.train, batchSize, WINDOW, backend.hostGenerator())
    step(toDevice(inputs), toDevice(targets.reshape(-1)))


def generate(net, codec, prompt, length, temperature, rng):
    """``prompt`` followed by ``length`` characters drawn one by one from the model."""
    if not prompt:
        raise DataError("the prompt must hold at least one character")
    if not temperature > 0:
        raise DataError(f"the temperature must be positive, got {temperature}")
    codes = list(codec.encode(prompt))
    net.evalMode()
    for _ in range(length):
        context = numpy.array(codes[-WINDOW:], dtype=numpy.int32)[:, None]
        scores = toHost(net(toDevice(context)))[-1].astype(numpy.float64) / temperature
        probabilities = numpy.exp(scores - scores.max())
        codes.append(int(rng.choice(len(probabilities), p=probabilities / probabilities.sum())))
    return codec.decode(codes)


def loadForSampling(path):
    """The network and character codec a text-task checkpoint holds (any optimizer's; its state is unused): the
    network rebuilt from the architecture the file carries, or, for a checkpoint written before files carried
    one, built as the model and options its extra entry names."""
    extra = readCheckpointSummary(path).extra
    try:
        if extra.get("task") != "text":
            raise CheckpointError(f"{path} is not a checkpoint of the text task (minidl train --task text)")
        codec = CharCodec(extra["vocabulary"])
        with TensorFile(path, CHECKPOINT_FORMAT) as file:
            if METADATA_KEY in file.metadata:
                return loadNetwork(path), codec
        net = buildModel(extra["model"], len(extra["vocabulary"]), extra["options"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: its extra entry does not describe a text model: {error}") from error
    tensors, _ = readTensors(path, CHECKPOINT_FORMAT)
    stored = {name[len("module."):]: array for name, array in tensors.items() if name.startswith("module.")}
    targets = net.getArrayTable()
    described = {name: (tuple(array.shape), str(array.dtype)) for name, array in stored.items()}
    if described != {name: (tuple(array.shape), str(array.dtype)) for name, array in targets.items()}:
        raise CheckpointError(f"{path}: its tensors are not those of the {extra['model']} model its extra describes")
    copyTensors(targets, stored)
    return net, codec


def addSampleArguments(parser, checkpointName):
    parser.add_argument("--out", default="runs", help="folder of the text task's checkpoint (default: ./runs)")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--length", type=int, default=400, help="characters to write (default: 400)")
    parser.add_argument("--temperature", type=float, default=0.8, help="(default: 0.8)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--checkpoint", metavar="FILE", help=f"the checkpoint (default: OUT/{checkpointName})")
    parser.set_defaults(run=lambda args, argv: sample(args, args.checkpoint or os.path.join(args.out, checkpointName)))


def sample(args, path):
    if args.length < 0:
        raise DataError(f"--length must be >= 0, got {args.length}")
    net, codec = loadForSampling(path)
    backend.seed(args.seed)
    print(generate(net, codec, args.prompt, args.length, args.temperature, backend.generator()))
    return 0
