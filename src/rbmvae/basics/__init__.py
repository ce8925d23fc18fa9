"""Layer 0, the basics every other layer uses: the error types (``errors``), the argument checks
(``checks``), named random streams (``rng``), device choice (``devices``), atomic file writes
(``atomic``) and the progress output of training (``progress``). Import them from their modules,
e.g. ``from rbmvae.basics.errors import ConfigError``."""
