"""Export to ONNX: ``minidl.onnx.export(module, path, sampleInput)`` writes a module's eval-mode graph.

Each module type has one small exporter function in the registry (``minidl.onnx.registry``); importing this
package registers them all.
"""

from minidl.onnx import activations, containers, layers, pools, shaping  # noqa: F401  (they register exporters)
from minidl.onnx.export import OPSET, buildModel, export
from minidl.onnx.registry import EXPORTERS, exporter

__all__ = ["EXPORTERS", "OPSET", "buildModel", "export", "exporter"]
