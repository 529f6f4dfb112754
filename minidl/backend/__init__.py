"""The device layer: the array module (cupy or numpy), transfers, random state, the Elementwise and Reduction
kernel types.

Everything in minidl reaches the device through this package; nothing else imports cupy.
"""

from minidl.backend import gpuarray
from minidl.backend.device import (
    gpuProblem,
    isDeviceArray,
    isGpu,
    name,
    scatterAdd,
    synchronize,
    toDevice,
    toHost,
    valuesPerElement,
    xp,
)
from minidl.backend.devicecheck import RangeCheck, ValueCheck, readChecks
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
from minidl.backend.tensorcores import allowTF32, tf32Allowed
from minidl.backend.upload import Upload, startUpload

__all__ = [
    "Elementwise", "RangeCheck", "deviceDraw", "generator", "getRandomState", "gpuProblem", "gpuarray",
    "hostGenerator", "isDeviceArray", "isGpu", "name", "normal", "readChecks", "scatterAdd", "scratch", "seed",
    "setRandomState", "simdSum", "synchronize", "toDevice", "toHost", "uniform", "ValueCheck", "xp",
]
__all__ += ["Reduction", "Upload", "allowTF32", "startUpload", "tf32Allowed", "valuesPerElement"]
