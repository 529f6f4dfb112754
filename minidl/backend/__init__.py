"""The device layer: the array module (cupy or numpy), transfers, random state, the Elementwise and Reduction
kernel types.

Everything in minidl reaches the device through this package; nothing else imports cupy.
"""

from minidl.backend import gpuarray
from minidl.backend.device import gpuProblem, isDeviceArray, isGpu, name, scatterAdd, synchronize, toDevice, toHost, xp
from minidl.backend.devicecheck import RangeCheck, readChecks
from minidl.backend.elementwise import Elementwise, simdSum
from minidl.backend.random import (
    deviceDraw,
    generator,
    getRandomState,
    hostGenerator,
    normal,
    seed,
    setRandomState,
    uniform,
)
from minidl.backend.reduction import Reduction
from minidl.backend.scratch import scratch
from minidl.backend.upload import Upload, startUpload

__all__ = [
    "Elementwise", "RangeCheck", "deviceDraw", "generator", "getRandomState", "gpuProblem", "gpuarray",
    "hostGenerator", "isDeviceArray", "isGpu", "name", "normal", "readChecks", "scatterAdd", "scratch", "seed",
    "setRandomState", "simdSum", "synchronize", "toDevice", "toHost", "uniform", "xp",
]
__all__ += ["Upload", "startUpload"]
__all__ += ["Reduction"]
