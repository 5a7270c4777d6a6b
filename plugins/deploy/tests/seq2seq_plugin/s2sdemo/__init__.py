"""A third-party-style seq2seq plugin the deploy tests train: character copy/reverse, a TransformerDecoder model."""
