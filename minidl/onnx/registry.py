"""The exporters: one function per module type, ``function(builder, module, inputs, cache) -> output name(s)``.

``inputs`` is the list of the module's input tensor names (one name for most modules, several for merge
modules such as Add); ``cache`` is what ``module.saveCache()`` held after the export's eval-mode forward pass
(``inData`` and ``data`` among others), for exporters that need a shape. A module returning a list (Split)
returns a list of names. Types are looked up exactly: a subclass needs its own exporter, since it may compute
something else.
"""

EXPORTERS = {}


def exporter(*moduleTypes):
    """Decorator: register the function as the exporter of these module types."""

    def register(function):
        for moduleType in moduleTypes:
            EXPORTERS[moduleType] = function
        return function

    return register


def exportModule(builder, module, inputs, cache):
    """The output name(s) of ``module`` added to ``builder``, reading tensors ``inputs``."""
    return EXPORTERS[type(module)](builder, module, inputs, cache)
