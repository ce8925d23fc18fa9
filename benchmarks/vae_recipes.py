"""What each VAE training choice buys on full MNIST (issue 13): train one recipe, then measure.

One recipe per call: the network is 784-256-z-256-784; the choices are the epochs, the
learning-rate schedule, the KL warm-up and the bound trained (ELBO or IWAE-k). After training,
the importance-weighted log-likelihood (K samples) of the first ``--eval-n`` stochastically
binarized test digits (``Dataset.binarized_test_images``, seed 0), the ELBO on the same digits,
the number of active units (posterior-mean variance > 0.01 over the whole test set) and the wall
times are appended as one JSON line to ``--results``. One torch thread (the machine is shared).

    python benchmarks/vae_recipes.py --latent 16 --epochs 30 --lr-schedule cosine \\
        --data-dir ../shared/data/mnist --out runs/vae-recipes/z16-cos30
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import rbmvae
from rbmvae.basics.rng import make_generator
from rbmvae.likelihood import active_units, elbo, iwae_log_likelihood
from rbmvae.models.vae import VAE
from rbmvae.training import TrainConfig, fit


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", default="constant")
    parser.add_argument("--final-lr-fraction", type=float, default=0.1)
    parser.add_argument("--kl-warmup-epochs", type=float, default=0.0)
    parser.add_argument("--iwae-k", type=int, default=1)
    parser.add_argument("--eval-n", type=int, default=1000)
    parser.add_argument("--eval-k", type=int, default=5000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--out", required=True, help="model directory (resumed if it exists)")
    parser.add_argument("--results", default="runs/vae-recipes/results.jsonl")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        help="hold out the last N training digits and score on them instead of the test set",
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    data = rbmvae.load_dataset(args.dataset, data_dir=args.data_dir)
    if args.validation:
        data = data.validation_split(args.validation)
    config = TrainConfig.defaults_for(
        "vae",
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_schedule=args.lr_schedule,
        final_lr_fraction=args.final_lr_fraction,
        kl_warmup_epochs=args.kl_warmup_epochs,
        iwae_k=args.iwae_k,
        binarize="stochastic",
    )
    model = VAE(data.n_pixels, 256, args.latent)
    out = Path(args.out)
    started = time.perf_counter()
    resume = (out / "training_state.safetensors").exists()
    history = fit(model, data, config, out_dir=out, resume=resume, progress=False)
    train_seconds = sum(record["train_seconds"] for record in history)
    test = data.binarized_test_images(args.eval_n, seed=0)
    began = time.perf_counter()
    generator = make_generator(0, "cpu", "iwae")
    iwae = iwae_log_likelihood(model, test, k=args.eval_k, generator=generator)
    eval_seconds = time.perf_counter() - began
    row = {
        "name": out.name,
        "latent": args.latent,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "final_lr_fraction": args.final_lr_fraction,
        "kl_warmup_epochs": args.kl_warmup_epochs,
        "iwae_k": args.iwae_k,
        "eval_n": args.eval_n,
        "scored_on": "validation" if args.validation else "test",
        "eval_k": args.eval_k,
        "iwae_ll": iwae,
        "elbo": elbo(model, test, generator=make_generator(0, "cpu", "elbo")),
        "active_units": active_units(model, data.binarized_test_images(None, seed=0)),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "wall_seconds": time.perf_counter() - started,
        "last_test_elbo_monitor": history[-1]["test_elbo"],
    }
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return row


def inpainting(argv=None) -> None:
    """``vae_recipes.py inpaint MODEL_DIR... [--n N]``: the inpainting table (binary evidence,
    20/50/80% missing and the top/bottom halves, conditional log-likelihoods, the stability
    rerun at twice the sweeps) of the given models beside the baselines, as JSON and text."""
    from rbmvae.evaluation.scoring import inpainting_table
    from rbmvae.training.checkpoint import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--conditional-images", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/vae-recipes/inpainting.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = rbmvae.load_dataset("mnist", data_dir=args.data_dir)
    models = {}
    for directory in args.models:
        loaded = load_model(directory)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        models[f"{model.label()} ({Path(directory).name})"] = model
    started = time.perf_counter()
    table = inpainting_table(
        models,
        data,
        n=args.n,
        steps=args.steps,
        halves=("top", "bottom"),
        conditional_images=args.conditional_images,
        conditional={"k": 500},
        stability=True,
        samplers={"vae": ("metropolis", "pseudo-gibbs")},
    )
    Path(args.out).write_text(
        json.dumps({**table.to_dict(), "seconds": time.perf_counter() - started})
    )
    print(table.format())


def _recipe(row: dict) -> str:
    """A recipe's settings in words (those that differ from the defaults of ``parse``)."""
    bound = "ELBO" if row["iwae_k"] == 1 else f"IWAE-{row['iwae_k']}"
    words = [bound, f"batch {row['batch_size']}", f"{row['lr_schedule']} from {row['lr']:g}"]
    if row.get("kl_warmup_epochs"):
        words.append(f"KL warm-up {row['kl_warmup_epochs']:g} epochs")
    return ", ".join(words)


def table(argv=None) -> str:
    """``vae_recipes.py table RESULTS.jsonl [--plot FILE]``: the recipes measured, one row each
    (log-likelihood against training minutes), as Markdown; the plot draws one point per row."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line]
    lines = [
        "| z | recipe | epochs | scored on | IWAE log p(x) | ELBO | active | train min |",
        "| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["latent"], -r["iwae_ll"])):
        scored = f"{r['eval_n']} {r.get('scored_on', 'test')} digits, K = {r['eval_k']}"
        lines.append(
            f"| {r['latent']} | {_recipe(r)} | {r['epochs']} | {scored} | {r['iwae_ll']:.2f} | "
            f"{r['elbo']:.2f} | {r['active_units']} | {r['train_seconds'] / 60:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        latents = sorted({r["latent"] for r in rows})
        fig, axes = plt.subplots(1, len(latents), figsize=(4.2 * len(latents), 3.4), dpi=100)
        for ax, z in zip(list(np.atleast_1d(axes)), latents, strict=True):
            for r in (r for r in rows if r["latent"] == z):
                ax.plot(r["train_seconds"] / 60, r["iwae_ll"], "o")
                ax.annotate(_recipe(r), (r["train_seconds"] / 60, r["iwae_ll"]), fontsize=6)
            ax.set(title=f"z = {z}", xlabel="training minutes (one thread)", ylabel="nats")
        fig.tight_layout()
        fig.savefig(args.plot)
    return text


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["inpaint"]:
        inpainting(sys.argv[2:])
    elif sys.argv[1:2] == ["table"]:
        table(sys.argv[2:])
    else:
        main()
