"""Modules: layers, activations and the containers that wire them (Sequential, Graph)."""

from minidl.errors import ModuleError
from minidl.nn.activation import Activation
from minidl.nn.activationfunctions import elu, gelu, leakyRelu, relu, sigmoid, softPlus, tanh
from minidl.nn.add import Add
from minidl.nn.attention import MultiHeadAttention
from minidl.nn.avgpool1d import AvgPool1D
from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.avgpool3d import AvgPool3D
from minidl.nn.batchnorm import BatchNorm
from minidl.nn.batchnorm1d import BatchNorm1D
from minidl.nn.batchnorm2d import BatchNorm2D
from minidl.nn.batchnorm3d import BatchNorm3D
from minidl.nn.captured import CapturedForward
from minidl.nn.cast import Cast
from minidl.nn.concat import Concat
from minidl.nn.container import Container
from minidl.nn.conv1d import Conv1D
from minidl.nn.conv2d import Conv2D
from minidl.nn.conv3d import Conv3D
from minidl.nn.crossmaplrn import CrossMapLRN
from minidl.nn.deconv1d import Deconv1D
from minidl.nn.deconv2d import Deconv2D
from minidl.nn.deconv3d import Deconv3D
from minidl.nn.depthconcat import DepthConcat
from minidl.nn.dropout import Dropout
from minidl.nn.dropout2d import Dropout2D
from minidl.nn.embedder import Embedder
from minidl.nn.flatten import Flatten
from minidl.nn.globalavgpool2d import GlobalAvgPool2D
from minidl.nn.glue import Glue
from minidl.nn.graph import Graph
from minidl.nn.grouplinear import GroupLinear
from minidl.nn.groupnorm import GroupNorm
from minidl.nn.identity import Identity
from minidl.nn.instancenorm2d import InstanceNorm2D
from minidl.nn.kmaxpool import KMaxPool
from minidl.nn.layernorm import LayerNorm
from minidl.nn.lcn import LCN
from minidl.nn.linear import Linear
from minidl.nn.maplrn import MapLRN
from minidl.nn.matmul import MatMul
from minidl.nn.maxpool1d import MaxPool1D
from minidl.nn.maxpool2d import MaxPool2D
from minidl.nn.maxpool3d import MaxPool3D
from minidl.nn.maxunpool2d import MaxUnpool2D
from minidl.nn.module import Module, Node
from minidl.nn.moveaxis import MoveAxis
from minidl.nn.mul import Mul
from minidl.nn.muladdconst import MulAddConst
from minidl.nn.noiseinjector import NoiseInjector
from minidl.nn.pad2d import Pad2D
from minidl.nn.parallel import Parallel
from minidl.nn.penalty import Penalty
from minidl.nn.positional import PositionalEmbedding
from minidl.nn.prelu import PRelu
from minidl.nn.rebuild import register
from minidl.nn.replicate import Replicate
from minidl.nn.reshape import Reshape
from minidl.nn.rnn import RNN
from minidl.nn.sequential import Sequential
from minidl.nn.slice import Slice
from minidl.nn.softmax import SoftMax
from minidl.nn.spatialtf import SpatialTf
from minidl.nn.split import Split
from minidl.nn.subtractmean import SubtractMean
from minidl.nn.sum import Sum
from minidl.nn.tile import Tile
from minidl.nn.tolist import ToList
from minidl.nn.transformer import TransformerBlock
from minidl.nn.transpose import SwapAxes, Transpose
from minidl.nn.upsample2d import Upsample2D

__all__ = [
    "Activation", "Add", "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNorm", "BatchNorm1D", "BatchNorm2D",
    "BatchNorm3D", "Cast", "Concat", "Container", "Conv1D", "Conv2D", "Conv3D", "CrossMapLRN", "Deconv1D", "Deconv2D",
    "Deconv3D", "DepthConcat", "Dropout", "Dropout2D", "Embedder", "Flatten", "GlobalAvgPool2D", "Glue", "Graph",
    "GroupLinear", "GroupNorm", "Identity", "InstanceNorm2D", "KMaxPool", "LCN", "LayerNorm", "Linear", "MapLRN",
    "MatMul", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxUnpool2D", "Module", "ModuleError", "MoveAxis", "Mul",
    "MulAddConst", "MultiHeadAttention", "Node", "NoiseInjector", "PRelu", "Pad2D", "Parallel", "Penalty",
    "PositionalEmbedding", "RNN", "Replicate", "Reshape", "Sequential", "Slice", "SoftMax", "SpatialTf", "Split",
    "SubtractMean", "Sum", "SwapAxes", "Tile", "ToList", "TransformerBlock", "Transpose", "Upsample2D", "elu", "gelu",
    "leakyRelu", "register", "relu", "sigmoid", "softPlus", "tanh",
]
__all__ += ["CapturedForward"]
