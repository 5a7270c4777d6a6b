"""Sequence to sequence in engine-nlp: parallel-text sources, an encoder-decoder transformer, beam search."""
