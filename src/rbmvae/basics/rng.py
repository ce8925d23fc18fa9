"""Random generators and named random streams.

Every random draw in the package takes an explicit :class:`torch.Generator`. Where one run needs
several independent streams (the masks of each missing fraction, the shuffling of each epoch, the
monitor's binarization), each stream gets its own seed from :func:`derive_seed`, named by what it
is for, instead of ad-hoc offsets such as ``seed + 7``: the same purpose and index give the same
stream wherever it is drawn (the inpainting figures show the very masks that were scored).
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, purpose: str, *index: int | str) -> int:
    """A 63-bit seed for the stream ``purpose`` (and ``index``) of a run seeded with ``seed``.

    Deterministic across processes and platforms (SHA-256 of the three, not Python's ``hash``);
    distinct purposes or indices give unrelated streams.
    """
    key = "/".join([str(int(seed)), purpose, *(str(i) for i in index)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def make_generator(
    seed: int, device: torch.device | str = "cpu", purpose: str | None = None, *index: int | str
) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``, or with ``derive_seed(seed, purpose, *index)``
    when a ``purpose`` is given."""
    generator = torch.Generator(device=torch.device(device))
    value = int(seed) if purpose is None else derive_seed(seed, purpose, *index)
    generator.manual_seed(value)
    return generator
