"""The training options of ``rbmvae train``, shared by the parser and the commands."""

from __future__ import annotations

from .types import nonnegative_float, positive_float, positive_int

# The training options of ``rbmvae train``: (flag, TrainConfig field, argparse type, help). Each
# defaults to None, meaning "the model kind's default (or the recipe's)", shown in the help.
TRAINING_OPTIONS = (
    ("--epochs", "epochs", positive_int, "passes over the training set"),
    ("--batch-size", "batch_size", positive_int, "images per update"),
    ("--lr", "learning_rate", positive_float, "learning rate"),
    ("--weight-decay", "weight_decay", nonnegative_float, "L2 penalty on weight matrices"),
    ("--lr-schedule", "lr_schedule", None, "learning-rate schedule"),
    (
        "--binarize",
        "binarize",
        None,
        "training pixels: grey values as probabilities (none), >0.5, or a fresh Bernoulli draw "
        "each epoch (stochastic)",
    ),
    ("--seed", "seed", int, "seed of every random stream of the run"),
)
RBM_OPTIONS = (
    ("--method", "method", None, "CD-k, persistent CD or parallel tempering"),
    ("--k", "k", positive_int, "Gibbs steps per update (the first epoch's, with k_final)"),
)
