"""engine-nlp: tokenizers, GPT language models, text classifiers and text generation for engine.

Importing this package imports neither torch nor the tokenizers library: the plugin module
(`engine_nlp.plugin`) only declares components, whose targets are imported when a run is built.
"""

__version__ = "0.1.0"
