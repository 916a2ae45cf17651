"""Time a recipe's training step on each device: the device's part (the recipe's teachers, forward,
backward, AdamW) and, with --data, the CPU's part (mixing a batch of scenes from the recipe's pools).

    python -m export.bench_train export/recipes/sat-squeak.yaml [--device auto|cpu|cuda] [--steps 30] [--data]

The device's part (export.train.training_step) runs on batches of random audio shaped as the
recipe's (batch_size scenes of n_columns columns), so it needs no data, only the teachers the recipe
distils from at every step (the command teacher hears a 1 s window at every column); its median over --steps steps after 5
warm-up steps is printed with steps per second. A step of training costs the two parts added:
export.train mixes the next batch on the CPU while nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from export.data.scenes import SceneConfig, SceneSampler
from export.train import build, distillers, load_pools, load_recipe, recipe_labels, resolve_device, training_step

WARMUP_STEPS = 5


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_step_ms(recipe, root: Path, device: torch.device, steps: int) -> tuple[list[float], list[str]]:
    """Wall ms of export.train's training_step (teachers, forward, backward, clipping, AdamW) on random
    scenes, one per timed step, and the teachers that ran."""
    torch.manual_seed(0)
    labels = recipe_labels(recipe)
    model = build(recipe, labels).to(device).train()
    n_columns = int(recipe.scene.get("n_columns", SceneConfig.n_columns))
    column_samples = model.card.hop_samples[0]
    teachers = distillers(recipe, root, tuple(l.name for l in labels), column_samples, device)
    audio = 0.1 * torch.randn(recipe.batch_size, n_columns * column_samples, device=device)
    targets = torch.zeros(recipe.batch_size, n_columns, len(labels), device=device)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    pos_weight, rng = torch.ones(len(labels), device=device), np.random.default_rng(0)
    times_ms = []
    for step in range(WARMUP_STEPS + steps):
        sync(device)
        start = time.perf_counter()
        batch = (audio, targets, torch.ones_like(targets))
        training_step(model, optimizer, params, batch, teachers, pos_weight, rng, recipe, column_samples)
        sync(device)
        if step >= WARMUP_STEPS:
            times_ms.append(1e3 * (time.perf_counter() - start))
    return times_ms, [type(t).__name__ for t in teachers]


def scene_batch_ms(recipe, root: Path, steps: int) -> list[float]:
    """Wall ms to mix one batch of training scenes on the CPU (the recipe's pools, loaded first)."""
    labels = recipe_labels(recipe)
    model = build(recipe, labels)
    label_names = tuple(l.name for l in labels)
    train_pools, _ = load_pools(recipe, root, model.card.sample_rate_hz, label_names)
    cfg = SceneConfig(**{**recipe.scene, "column_samples": model.card.hop_samples[0]})
    sampler, rng = SceneSampler(train_pools, label_names, cfg), np.random.default_rng(0)
    times_ms = []
    for _ in range(steps):
        start = time.perf_counter()
        [sampler.sample(rng) for _ in range(recipe.batch_size)]
        times_ms.append(1e3 * (time.perf_counter() - start))
    return times_ms


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--data", action="store_true", help="also time the scene mixing (loads the recipe's data)")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe)
    device = resolve_device(args.device)
    torch.set_num_threads(recipe.threads)
    root = Path(__file__).resolve().parent.parent
    times_ms, teacher_names = device_step_ms(recipe, root, device, args.steps)
    device_ms = statistics.median(times_ms)
    result = {"recipe": recipe.name, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "cpu_threads": torch.get_num_threads(), "batch_size": recipe.batch_size,
              "teachers_per_step": teacher_names,
              "device_step_ms": round(device_ms, 2), "device_steps_per_s": round(1e3 / device_ms, 1)}
    if args.data:
        scenes_ms = statistics.median(scene_batch_ms(recipe, root, args.steps))
        result |= {"scene_batch_ms": round(scenes_ms, 2), "steps_per_s": round(1e3 / (device_ms + scenes_ms), 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
