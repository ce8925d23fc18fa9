"""Published test log-likelihoods on MNIST that the study's models stand beside, with their
sources (the headline table of :mod:`.tables` prints them next to each model)."""

from __future__ import annotations

from dataclasses import dataclass

DASH = "–"


@dataclass(frozen=True)
class Published:
    """A published test log-likelihood (nats per image) on MNIST: its value, the published
    model's setting, its size (hidden units of an RBM, code size z of a VAE) and its source
    (the number of its entry in ``CITATIONS``)."""

    value: float
    setting: str
    size: int
    source: int


CITATIONS = {
    1: "R. Salakhutdinov, I. Murray (2008). On the quantitative analysis of deep belief "
    "networks. ICML 2008 (an RBM with 500 hidden units trained by CD-25, scored by AIS).",
    2: "T. R. Davidson, L. Falorsi, N. De Cao, T. Kipf, J. M. Tomczak (2018). Hyperspherical "
    "variational auto-encoders. UAI 2018, Table 1 (the Gaussian VAE, one stochastic layer).",
}

# By (model kind, hidden units or code size): the published figures beside a model of the study;
# a figure published for another size than the model's says so in its cell.
PUBLISHED: dict[tuple[str, int], tuple[Published, ...]] = {
    ("rbm", 500): (Published(-86.34, "CD-25", 500, 1),),
    ("vae", 2): (Published(-135.73, "z = 2", 2, 2),),
    ("vae", 8): (Published(-110.21, "z = 5", 5, 2), Published(-93.84, "z = 10", 10, 2)),
    ("vae", 16): (Published(-93.84, "z = 10", 10, 2), Published(-88.90, "z = 20", 20, 2)),
}


# Per model kind: the constructor argument that sizes it, how a model of a size is named, and
# how a size is written.
MODEL_SIZES = {
    "rbm": ("n_hidden", "RBM, {} hidden", "{} hidden units"),
    "vae": ("n_latent", "VAE, z = {}", "z = {}"),
}


def model_size(model: dict) -> int | None:
    """Hidden units of an RBM, code size of a VAE, from a model's entry in ``metrics.json``."""
    argument = MODEL_SIZES.get(model.get("kind"), ("",))[0]
    return model.get("config", {}).get(argument)


def model_label(name: str, model: dict) -> str:
    """``RBM, 500 hidden`` / ``VAE, z = 16`` (as the models label themselves), else ``name``."""
    size = model_size(model)
    return MODEL_SIZES[model["kind"]][1].format(size) if size else name


def published_for(model: dict) -> tuple[Published, ...]:
    return PUBLISHED.get((model.get("kind"), model_size(model)), ())


def published_cell(model: dict) -> str:
    """The published figures for a model of this kind and size with their source numbers;
    where none was published at the model's own size, the cell says so."""
    size = model_size(model)
    entries = published_for(model)
    if not entries:
        return DASH
    text = ", ".join(f"{entry.value:.2f} ({entry.setting})" for entry in entries)
    text += " " + " ".join(f"[{n}]" for n in dict.fromkeys(entry.source for entry in entries))
    if all(entry.size != size for entry in entries):
        text += f"; none published at {MODEL_SIZES[model['kind']][2].format(size)}"
    return text
