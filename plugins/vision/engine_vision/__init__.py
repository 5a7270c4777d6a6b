"""engine-vision: image models (CNN, ResNet, ViT), image data sources and tensor augmentation for engine.

Importing this package imports nothing heavy: torch, numpy, Pillow and scikit-learn
are imported by the modules that need them, when a run is built.
"""

__version__ = "0.1.0"
