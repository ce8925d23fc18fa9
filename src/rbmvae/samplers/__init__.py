"""Inpainting samplers: masked Markov chains that fill in missing pixels (``inpainting``:
clamped Gibbs for RBMs, pseudo-Gibbs and Metropolis-within-Gibbs for VAEs, the registry
``SAMPLERS`` and the driver ``run_masked_chain``). docs/derivation.md, section 5."""

from .inpainting import (
    SAMPLERS,
    InpaintResult,
    clamped_gibbs,
    inpaint,
    metropolis_within_gibbs,
    pseudo_gibbs,
    run_masked_chain,
    samplers_for,
    start_state,
)

__all__ = [
    "SAMPLERS",
    "InpaintResult",
    "clamped_gibbs",
    "inpaint",
    "metropolis_within_gibbs",
    "pseudo_gibbs",
    "run_masked_chain",
    "samplers_for",
    "start_state",
]
