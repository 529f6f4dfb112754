"""Modules: layers, activations and the containers that wire them (Sequential, Graph)."""

from minidl.errors import ModuleError
from minidl.nn.activation import Activation
from minidl.nn.activations import elu, gelu, leakyRelu, relu, sigmoid, softPlus, tanh
from minidl.nn.add import Add
from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.concat import Concat
from minidl.nn.container import Container
from minidl.nn.conv2d import Conv2D
from minidl.nn.graph import Graph, Node
from minidl.nn.identity import Identity
from minidl.nn.linear import Linear
from minidl.nn.maxpool2d import MaxPool2D
from minidl.nn.module import Module
from minidl.nn.sequential import Sequential

__all__ = [
    "Activation", "Add", "AvgPool2D", "Concat", "Container", "Conv2D", "Graph", "Identity", "Linear", "MaxPool2D",
    "Module", "ModuleError", "Node", "Sequential", "elu", "gelu", "leakyRelu", "relu", "sigmoid", "softPlus", "tanh",
]
