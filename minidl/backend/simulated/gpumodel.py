"""A stated model of a step's time on a named GPU, from a simulated device's trace. It is a model, not a
measurement: every figure it uses is below, and ``minidl profile`` labels its prediction as such.

Per launch, the device needs ``latency + max(bytes / bandwidth, flops / throughput)``: the bytes the launch
moves at the GPU's HBM bandwidth, its FLOPs at FP32 (CUDA cores) throughput, or TF32/FP16 tensor-core
throughput for a product whose trace entry says it ran on them (``Launch.math``: float16 products, and float32 ones
under ``minidl.backend.allowTF32``), or for every product when ``tensorCores``; a kernel whose threads cannot
fill the GPU (fewer than ``fullThreads``) gets that fraction of the bandwidth. The host needs ``hostPerLaunch`` per
launch (minidl's Python per kernel call, measured on this machine, plus CuPy's own launch call, estimated),
``hostPerCopy`` per copy; a launch of a captured CUDA graph costs the host ``GRAPH_LAUNCH_SECONDS`` once, and its
kernels (launches marked ``graph``) nothing on the host, each still its latency and its bytes on the device. Host
and device run concurrently between two syncs; a sync makes each wait for the other, so a step is the sum over the
stretches between syncs of max(host time, device time), plus each copy's bytes at the PCIe rate.
"""

from dataclasses import dataclass

from minidl.backend.simulated.computetype import TENSOR_CORE_MATH


@dataclass(frozen=True)
class Gpu:
    """Published peak figures of one GPU (dense, no sparsity)."""

    name: str
    bandwidth: float  # HBM bytes per second
    fp32: float  # FLOP/s on CUDA cores
    tensor: float  # FLOP/s of TF32 tensor cores (dense)
    pcie: float  # host-device bytes per second (pinned)
    smCount: int
    latency: float = 3e-6  # seconds: the shortest a launch occupies the device
    threadsPerSm: int = 2048

    @property
    def fullThreads(self):
        return self.smCount * self.threadsPerSm


GPUS = {
    "h100": Gpu("NVIDIA H100 SXM5 80GB", bandwidth=3.35e12, fp32=67e12, tensor=495e12, pcie=55e9, smCount=132),
    "h200": Gpu("NVIDIA H200 SXM 141GB", bandwidth=4.8e12, fp32=67e12, tensor=495e12, pcie=55e9, smCount=132),
    "a100": Gpu("NVIDIA A100 SXM4 80GB", bandwidth=2.04e12, fp32=19.5e12, tensor=156e12, pcie=25e9, smCount=108),
}

CUPY_LAUNCH_SECONDS = 6e-6  # CuPy's own ElementwiseKernel call on a warm cache (an estimate, not measured here)
GRAPH_LAUNCH_SECONDS = 10e-6  # CuPy's Graph.launch: its Python and cudaGraphLaunch (an estimate, not measured here)
PAGEABLE_FACTOR = 0.5  # a copy from pageable memory goes through a staging buffer at about half the pinned rate


def deviceSeconds(launch, gpu, tensorCores=False):
    """The model's time of one launch on ``gpu``."""
    occupancy = min(1.0, max(launch.threads, 1) / gpu.fullThreads)
    memory = (launch.bytesRead + launch.bytesWritten) / (gpu.bandwidth * occupancy)
    onTensorCores = tensorCores or launch.math in TENSOR_CORE_MATH
    compute = launch.flops / (gpu.tensor if onTensorCores else gpu.fp32) if launch.flops else 0.0
    return gpu.latency + max(memory, compute)


def predict(trace, gpu, hostPerLaunch, tensorCores=False):
    """{"seconds", "deviceSeconds", "hostSeconds", "copySeconds"} for the traced work on ``gpu``;
    ``hostPerLaunch``: minidl's measured Python seconds per kernel call (CuPy's call is added)."""
    host = hostPerLaunch + CUPY_LAUNCH_SECONDS
    total = stretchHost = stretchDevice = 0.0
    deviceTotal = hostTotal = copies = 0.0
    for event in trace.events:
        if event.kind == "launch":
            seconds, launching = deviceSeconds(event, gpu, tensorCores), 0.0 if event.graph else host
            stretchDevice += seconds
            stretchHost += launching
            deviceTotal += seconds
            hostTotal += launching
        elif event.kind == "graphLaunch":
            stretchHost += GRAPH_LAUNCH_SECONDS
            hostTotal += GRAPH_LAUNCH_SECONDS
        elif event.kind == "hostToDevice":
            seconds = event.nbytes / (gpu.pcie * (1.0 if event.pinned else PAGEABLE_FACTOR))
            copies += seconds
            stretchDevice += seconds
            stretchHost += host
            if not event.pinned:  # a pageable copy returns only when it is done: the host waits
                total += max(stretchHost, stretchDevice)
                stretchHost = stretchDevice = 0.0
        else:  # a sync or a device-to-host copy: both sides meet
            seconds = event.nbytes / gpu.pcie
            copies += seconds
            total += max(stretchHost, stretchDevice) + seconds
            stretchHost = stretchDevice = 0.0
    total += max(stretchHost, stretchDevice)
    return {"seconds": total, "deviceSeconds": deviceTotal, "hostSeconds": hostTotal, "copySeconds": copies}
