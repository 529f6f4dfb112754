"""ResNet-18 and ResNet-34 (He et al. 2016, basic blocks) for images of any size and channel count.

Stem, for images whose smaller side is under 64 pixels (CIFAR-style): 3x3 Conv2D (stride 1) → BatchNorm2D →
ReLU, no max pooling (a 32x32 image is already small); from 64 pixels on (ImageNet-style, as torchvision's):
7x7 Conv2D with stride 2 → BatchNorm2D → ReLU → 3x3 MaxPool2D with stride 2 (padded by 1), a quarter of the
side before the first stage. Then four
stages of basic blocks at width, 2 width, 4 width, 8 width maps (64 ... 512), the first block of stages 2-4
with stride 2; a basic block is Conv2D 3x3 → BatchNorm2D → ReLU → Conv2D 3x3 → BatchNorm2D, added to its
input (or, where the stride or the width changes, to a 1x1 Conv2D projection with that stride and a
BatchNorm2D), then ReLU. Global average pooling and a Linear layer give the class scores. Convolutions have
no bias (BatchNorm2D follows each) and He initialisation.

Any image side works: on the 1x8x8 digits the stages see 8x8, 4x4, 2x2 and 1x1 maps (no upsampling).
"""

from minidl.nn import (
    Activation,
    Add,
    BatchNorm2D,
    Conv2D,
    Flatten,
    GlobalAvgPool2D,
    Graph,
    Identity,
    Linear,
    MaxPool2D,
    relu,
)

LARGE_IMAGES = 64  # the smaller side from which the stem is ImageNet's


def _convNorm(node, inmaps, outmaps, size, stride):
    conv = Conv2D(inmaps, outmaps, size, stride=stride, pad=size // 2, useBias=False, initscheme="he")
    return BatchNorm2D(outmaps).node(conv.node(node))


def basicBlock(node, inmaps, outmaps, stride):
    """relu(branch(x) + shortcut(x)) as graph nodes; the shortcut is x itself when the shape is kept."""
    branch = Activation(relu).node(_convNorm(node, inmaps, outmaps, 3, stride))
    branch = _convNorm(branch, outmaps, outmaps, 3, 1)
    shortcut = node if stride == 1 and inmaps == outmaps else _convNorm(node, inmaps, outmaps, 1, stride)
    return Activation(relu).node(Add().node(branch, shortcut))


def resnet(sampleShape, classes, blocks=(2, 2, 2, 2), width=64):
    """A residual network of basic blocks, ``blocks[i]`` in stage i at width 2^i ``width`` maps."""
    inp = Identity(name="images").node()
    if min(sampleShape[1:]) >= LARGE_IMAGES:
        node = MaxPool2D(3, 2, pad=1).node(Activation(relu).node(_convNorm(inp, sampleShape[0], width, 7, 2)))
    else:
        node = Activation(relu).node(_convNorm(inp, sampleShape[0], width, 3, 1))
    maps = width
    for stage, count in enumerate(blocks):
        for index in range(count):
            outmaps = width * 2 ** stage
            node = basicBlock(node, maps, outmaps, 2 if stage and index == 0 else 1)
            maps = outmaps
    out = Linear(maps, classes).node(Flatten().node(GlobalAvgPool2D().node(node)))
    return Graph(inputs=inp, outputs=out)


def resnet18(sampleShape, classes):
    """ResNet-18: two basic blocks per stage (11,173,962 parameters for 3x32x32 images and 10 classes)."""
    return resnet(sampleShape, classes, (2, 2, 2, 2))


def resnet34(sampleShape, classes):
    """ResNet-34: 3, 4, 6 and 3 basic blocks per stage (21,282,122 parameters for 3x32x32, 10 classes)."""
    return resnet(sampleShape, classes, (3, 4, 6, 3))
