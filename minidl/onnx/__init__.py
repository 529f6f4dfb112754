"""Export to ONNX: ``minidl.onnx.export(module, path, sampleInput)`` writes a module's eval-mode graph.

Each module type has one small exporter function in the registry (``minidl.onnx.registry``); importing this
package registers them all. It needs the ``onnx`` package (the ``onnx`` extra).
"""

from minidl.errors import ExportError

try:
    import onnx  # noqa: F401
except ImportError as error:
    raise ExportError("minidl.onnx needs the onnx package: pip install 'minidl[onnx]'") from error

from minidl.onnx import (  # noqa: E402, F401  (importing the exporters' modules registers them)
    activations,
    attention,
    containers,
    convolutions,
    layers,
    localnorm,
    normalization,
    pools,
    rearranging,
    recurrent,
    resampling,
    shaping,
    spatialtf,
    volumes,
)
from minidl.onnx.export import OPSET, buildModel, export  # noqa: E402
from minidl.onnx.registry import EXPORTERS, exporter  # noqa: E402

__all__ = ["EXPORTERS", "OPSET", "buildModel", "export", "exporter"]
