"""Base models: CIFAR ResNets and VGGs behind ``create_model(name, num_classes=10, width=1.0)``.

    >>> from neuralfuse.models import create_model, list_models
    >>> list_models()
    ['resnet18', 'resnet50', 'vgg11', 'vgg16', 'vgg19']
    >>> model = create_model("resnet18", width=0.25)   # a quarter of the channels, for CPU work

A new family is one module here, imported below, whose factories carry ``@register_model``.
"""
from neuralfuse.models import resnet, vgg  # noqa: F401  (registers the families)
from neuralfuse.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
