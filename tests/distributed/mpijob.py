"""Programs run under ``mpiexec -n 2`` by test_distributed.py; each prints one result line on rank 0.

    identical    every rank trains on different data; the parameters end bit-identical on all ranks
    equivalent   2 ranks with batch b each match 1 process with batch 2b on the same data order
    trainer      the same through Trainer.trainFromHost, which shards each global batch by itself
    half         "equivalent" in float16 with master weights and a loss scaler (MPI has no half type), and a
                 float16 mean whose sum is past float16's range
    buffers      a network with BatchNorm fitted with validation: every rank ends with the same running statistics
                 and validates alike
    failure      rank 1 raises; the job must end with its error, not hang
    stopped      the last rank stops itself (SIGSTOP) before the gradient all-reduce; the others must abort after
                 the deadline, naming it
    collectives  every collective of NodeInfo against numbers computed by hand
"""

import os
import signal
import sys

import numpy

from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.cost import MSE, CrossEntropy
from minidl.distributed import NodeInfo
from minidl.nn import Activation, BatchNorm, Linear, Sequential, tanh
from minidl.optim import AdaGrad, LossScaler
from minidl.train import Trainer

STEPS, BATCH = 10, 8


def makeNet(seed):
    backend.seed(seed)
    return Sequential().extend([Linear(4, 16), Activation(tanh), Linear(16, 2)])


def train(net, optimizer, batches):
    cost = MSE()
    for x, y in batches:
        _, grad = cost(net(toDevice(x)), toDevice(y))
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()


def flatParams(net):
    return numpy.concatenate([toHost(var.data).ravel() for var in net.getVarTable().values()])


def batches(seed, count, size):
    rng = numpy.random.default_rng(seed)
    return [(rng.standard_normal((size, 4)).astype(numpy.float32), rng.standard_normal((size, 2)).astype(numpy.float32))
            for _ in range(count)]


def identical(info):
    net = makeNet(seed=info.index)  # different initialisations: setupOn must broadcast rank 0's
    optimizer = AdaGrad(learnRate=0.05, nodeinfo=info).setupOn(net, useGlobalState=True)
    train(net, optimizer, batches(seed=100 + info.index, count=STEPS, size=BATCH))
    gathered = info.comm.gather(flatParams(net).tobytes(), root=0)
    if info.isRoot:
        print("identical", all(item == gathered[0] for item in gathered), len(gathered))


def equivalent(info):
    full = batches(seed=7, count=STEPS, size=BATCH * info.gridsize)
    shard = slice(info.index * BATCH, (info.index + 1) * BATCH)
    net = makeNet(seed=0)
    optimizer = AdaGrad(learnRate=0.05, nodeinfo=info).setupOn(net, useGlobalState=True)
    train(net, optimizer, [(x[shard], y[shard]) for x, y in full])
    if info.isRoot:
        single = makeNet(seed=0)
        train(single, AdaGrad(learnRate=0.05).setupOn(single, useGlobalState=True), full)
        difference = float(numpy.abs(flatParams(net) - flatParams(single)).max())
        print("equivalent", difference)


def trainer(info):
    rng = numpy.random.default_rng(3)
    x, y = rng.standard_normal((96, 4)).astype(numpy.float32), rng.standard_normal((96, 2)).astype(numpy.float32)
    net = makeNet(seed=0)
    optimizer = AdaGrad(learnRate=0.05, nodeinfo=info).setupOn(net, useGlobalState=True)
    backend.seed(11)  # the same shuffling on every rank
    errors = [Trainer(net, MSE(), optimizer, batchsize=BATCH, verbose=False).trainFromHost(x, y) for _ in range(3)]
    if info.isRoot:
        single = makeNet(seed=0)
        singleOptimizer = AdaGrad(learnRate=0.05).setupOn(single, useGlobalState=True)
        backend.seed(11)
        singleTrainer = Trainer(single, MSE(), singleOptimizer, batchsize=BATCH * info.gridsize, verbose=False)
        singleErrors = [singleTrainer.trainFromHost(x, y) for _ in range(3)]
        print("trainer", float(numpy.abs(flatParams(net) - flatParams(single)).max()),
              max(abs(a - b) for a, b in zip(errors, singleErrors)))


def half(info):
    full = batches(seed=7, count=STEPS, size=BATCH * info.gridsize)
    shard = slice(info.index * BATCH, (info.index + 1) * BATCH)

    def trained(nodeinfo, data):
        net = makeNet(seed=0).calcMode(numpy.float16)
        optimizer = AdaGrad(learnRate=0.05, nodeinfo=nodeinfo).setupOn(net, useGlobalState=True,
                                                                       lossScaler=LossScaler(scale=2.0**14))
        cost = MSE()
        for x, y in data:
            _, grad = cost(net(toDevice(x.astype(numpy.float16))), toDevice(y.astype(numpy.float16)))
            optimizer.zeroGradParams()
            net.backward(optimizer.lossScaler.scaleGrad(grad))
            optimizer.update()
        return toHost(optimizer.groups[0].master), optimizer.lossScaler.scale

    masters, scale = trained(info, [(x[shard], y[shard]) for x, y in full])
    gathered = info.comm.gather(masters.tobytes(), root=0)
    large = info.meanTensor(toDevice(numpy.full(3, 40000, dtype=numpy.float16)))  # summed: 80000, past 65504
    if info.isRoot:
        singleMasters, singleScale = trained(None, full)
        print("half", all(item == gathered[0] for item in gathered), scale == singleScale,
              toHost(large).tolist() == [40000] * 3, float(numpy.abs(masters - singleMasters).max()))


def buffers(info):
    rng = numpy.random.default_rng(5)
    x, labels = rng.standard_normal((96, 4)).astype(numpy.float32), rng.integers(0, 2, 96).astype(numpy.int32)
    x[:, 0] += 3 * labels  # something to learn, and batch means that differ from shard to shard
    backend.seed(0)
    net = Sequential().extend([Linear(4, 16), BatchNorm(16), Activation(tanh), Linear(16, 2)])
    optimizer = AdaGrad(learnRate=0.05, nodeinfo=info).setupOn(net, useGlobalState=True)
    backend.seed(11)  # the same shuffling on every rank
    history = Trainer(net, CrossEntropy(), optimizer, batchsize=BATCH, verbose=False).fit(
        x, labels, 3, validation=(x[:40], labels[:40]), verbose=False)
    errors = [entry["valError"] for entry in history]
    statistics = [toHost(buffer).tobytes() for buffer in net.getBufferTable().values()]
    gathered = info.comm.gather((errors, statistics), root=0)
    if info.isRoot:
        print("buffers", all(item == gathered[0] for item in gathered))


def failure(info):
    if info.index == 1:
        raise RuntimeError("rank 1 fails on purpose")
    info.barrier()  # rank 0 would wait here forever without the abort


def stopped(info):
    net = makeNet(seed=0)
    optimizer = AdaGrad(learnRate=0.05, nodeinfo=info).setupOn(net, useGlobalState=True)
    if info.index == info.gridsize - 1:
        print(f"rank {info.index} stops", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
    train(net, optimizer, batches(seed=1, count=1, size=BATCH))


def collectives(info):
    values = numpy.arange(6, dtype=numpy.float64) * (info.index + 1)
    info.sumTensor(values)
    mean = info.meanValue(info.index)
    gathered = info.allGather({"rank": info.index, "text": "x" * info.index})
    start = numpy.full(3, float(info.index), dtype=numpy.float32)
    info.broadcastBuffer(start, root=1)
    info.barrier()
    ranks = info.gridsize * (info.gridsize + 1) // 2
    if info.isRoot:
        print("collectives", numpy.array_equal(values, numpy.arange(6) * ranks), mean == (info.gridsize - 1) / 2,
              gathered == [{"rank": rank, "text": "x" * rank} for rank in range(info.gridsize)],
              numpy.array_equal(start, numpy.ones(3)))


if __name__ == "__main__":
    jobs = {"identical": identical, "equivalent": equivalent, "trainer": trainer, "half": half, "buffers": buffers,
            "failure": failure, "stopped": stopped, "collectives": collectives}
    jobs[sys.argv[1]](NodeInfo())
