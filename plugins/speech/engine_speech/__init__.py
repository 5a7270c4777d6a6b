"""engine-speech: audio features, spoken-digit data, keyword spotting and CTC speech recognition.

Nothing heavy is imported here: the plugin module (`engine_speech.plugin`) only declares names.
"""

__version__ = "0.1.0"
