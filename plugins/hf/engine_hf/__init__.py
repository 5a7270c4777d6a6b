"""engine-hf: Hugging Face ``transformers`` models (local directories, GGUF files) as engine components.

Importing this package imports neither torch nor transformers: the plugin module (`engine_hf.plugin`) only
declares components, whose targets are imported when a run is built.
"""

__version__ = "0.1.0"
