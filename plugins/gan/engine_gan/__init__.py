"""engine-gan: adversarial training for engine (declarations live in :mod:`engine_gan.plugin`)."""
