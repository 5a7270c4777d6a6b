"""engine-gan: adversarial training for engine (declarations live in `engine_gan.plugin`)."""
