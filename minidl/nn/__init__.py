"""Modules: layers, activations and the containers that wire them (Sequential, Graph)."""

from minidl.errors import ModuleError
from minidl.nn.activation import Activation
from minidl.nn.activations import elu, gelu, leakyRelu, relu, sigmoid, softPlus, tanh
from minidl.nn.add import Add
from minidl.nn.attention import MultiHeadAttention
from minidl.nn.avgpool1d import AvgPool1D
from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.avgpool3d import AvgPool3D
from minidl.nn.batchnorm import BatchNorm
from minidl.nn.batchnorm1d import BatchNorm1D
from minidl.nn.batchnorm2d import BatchNorm2D
from minidl.nn.batchnorm3d import BatchNorm3D
from minidl.nn.cast import Cast
from minidl.nn.concat import Concat
from minidl.nn.container import Container
from minidl.nn.conv1d import Conv1D
from minidl.nn.conv2d import Conv2D
from minidl.nn.conv3d import Conv3D
from minidl.nn.deconv1d import Deconv1D
from minidl.nn.deconv2d import Deconv2D
from minidl.nn.deconv3d import Deconv3D
from minidl.nn.dropout import Dropout
from minidl.nn.embedder import Embedder
from minidl.nn.flatten import Flatten
from minidl.nn.globalavgpool2d import GlobalAvgPool2D
from minidl.nn.graph import Graph, Node
from minidl.nn.groupnorm import GroupNorm
from minidl.nn.identity import Identity
from minidl.nn.instancenorm2d import InstanceNorm2D
from minidl.nn.kmaxpool import KMaxPool
from minidl.nn.layernorm import LayerNorm
from minidl.nn.linear import Linear
from minidl.nn.matmul import MatMul
from minidl.nn.maxpool1d import MaxPool1D
from minidl.nn.maxpool2d import MaxPool2D
from minidl.nn.maxpool3d import MaxPool3D
from minidl.nn.maxunpool2d import MaxUnpool2D
from minidl.nn.module import Module
from minidl.nn.mul import Mul
from minidl.nn.pad2d import Pad2D
from minidl.nn.positional import PositionalEmbedding
from minidl.nn.reshape import Reshape
from minidl.nn.rnn import RNN
from minidl.nn.sequential import Sequential
from minidl.nn.softmax import SoftMax
from minidl.nn.split import Split
from minidl.nn.transformer import TransformerBlock
from minidl.nn.transpose import SwapAxes, Transpose
from minidl.nn.upsample2d import Upsample2D

__all__ = [
    "Activation", "Add", "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNorm", "BatchNorm1D", "BatchNorm2D",
    "BatchNorm3D", "Cast", "Concat", "Container", "Conv1D", "Conv2D", "Conv3D", "Deconv1D", "Deconv2D", "Deconv3D",
    "Dropout", "Embedder", "Flatten", "GlobalAvgPool2D", "Graph", "GroupNorm", "Identity", "InstanceNorm2D", "KMaxPool",
    "LayerNorm", "Linear", "MatMul", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxUnpool2D", "Module", "ModuleError",
    "Mul", "MultiHeadAttention", "Node", "Pad2D", "PositionalEmbedding", "RNN", "Reshape", "Sequential", "SoftMax",
    "Split", "SwapAxes", "TransformerBlock", "Transpose", "Upsample2D", "elu", "gelu", "leakyRelu", "relu", "sigmoid",
    "softPlus", "tanh",
]
