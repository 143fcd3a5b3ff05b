"""NeuralFuse generators: ``create_generator(name)`` builds F(x) = clamp(x + G(x), -1, 1).

    >>> from neuralfuse.generators import create_generator, list_generators
    >>> list_generators()
    ['ConvL', 'ConvS', 'DeConvL', 'DeConvS', 'UIP', 'UNetL', 'UNetS']
    >>> g = create_generator("UNetL")          # g(x) is F(x); g.net is G

A new family is one module here, imported below, whose classes carry ``@register_generator``.
"""
from neuralfuse.generators import conv, deconv, uip, unet  # noqa: F401  (registers the families)
from neuralfuse.generators.registry import (
    InputTransform, create_generator, list_generators, register_generator,
)

__all__ = ["InputTransform", "create_generator", "list_generators", "register_generator"]
