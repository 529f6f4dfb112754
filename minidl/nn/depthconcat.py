"""DepthConcat: 4-d inputs (N, Cₖ, Hₖ, Wₖ) joined along the channel axis into (N, Σ Cₖ, max H, max W), each
centred in the larger maps with zeros around it (offset (H - Hₖ) // 2, (W - Wₖ) // 2), as in Inception
networks whose branches give maps of different sides; the gradient of each input is its box of the output's."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArrayList


class DepthConcat(Module):
    """``DepthConcat()``: a list of at least 2 NCHW inputs of one batch size and dtype."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input", sameShape=False)
        for item in data:
            if item.ndim != 4 or item.shape[0] != data[0].shape[0]:
                raise ModuleError(f"{self!r}: inputs must be 4-d (N, C, H, W) of one batch size, got "
                                  f"{[array.shape for array in data]}")

    def boxes(self, shapes):
        """Per input, the index of its box in the output, and the output's shape."""
        height, width = max(shape[2] for shape in shapes), max(shape[3] for shape in shapes)
        boxes, channel = [], 0
        for _, maps, h, w in shapes:
            top, left = (height - h) // 2, (width - w) // 2
            boxes.append((slice(None), slice(channel, channel + maps), slice(top, top + h), slice(left, left + w)))
            channel += maps
        return boxes, (shapes[0][0], channel, height, width)

    def updData(self, data):
        boxes, shape = self.boxes([item.shape for item in data])
        out = xp.zeros(shape, dtype=data[0].dtype)
        for box, item in zip(boxes, data):
            out[box] = item
        return out

    def updGrad(self, grad):
        boxes, _ = self.boxes([item.shape for item in self.inData])
        return [xp.ascontiguousarray(grad[box]) for box in boxes]
