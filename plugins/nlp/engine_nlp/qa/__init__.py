"""Extractive question answering: SQuAD-format data, a span model on the engine's encoder, exact match and F1.

- `engine_nlp.qa.squad`: reading SQuAD JSON, the official answer normalisation, exact match and F1 (torch-free);
- `engine_nlp.qa.synthetic`: generated reading-comprehension paragraphs and questions (torch-free);
- `engine_nlp.qa.data`: the data sources ``nlp.squad`` and ``nlp.reading_comprehension``;
- `engine_nlp.qa.model`: ``nlp.span_qa``, ``nlp.transformer_classifier``'s encoder with start/end logits;
- `engine_nlp.qa.task`: ``nlp.extractive_qa``, span cross-entropy, best-span decoding, ``exact_match`` and ``f1``.
"""
