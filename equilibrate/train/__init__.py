"""Training: recipes, the memory planner and resumable, content-addressed runs.

- :mod:`~equilibrate.train.recipes`: :class:`Recipe` (YAML, validated, ``extends:``, ``replace``).
- :mod:`~equilibrate.train.shapes`: model shapes as data (Llama-3-8B, SmolLM2-135M, a tiny one).
- :mod:`~equilibrate.train.memory`: :func:`plan_memory` -> :class:`MemoryPlan`.
- :mod:`~equilibrate.train.trainer`: QLoRA model, adapters and trl trainer from a recipe.
- :mod:`~equilibrate.train.runs`: :func:`train_run` -> :class:`RunResult`.
- :mod:`~equilibrate.train.synthetic`: random models, a word tokenizer and random pairs (tests).

Names are imported on first use, so ``import equilibrate.train`` does not load torch.
"""

from __future__ import annotations

from equilibrate._lazy import lazy_getattr as _lazy_getattr

_EXPORTS = {
    "Recipe": "recipes",
    "repository_recipes": "recipes",
    "ModelShape": "shapes",
    "SHAPES": "shapes",
    "get_shape": "shapes",
    "shape_from_config": "shapes",
    "MemoryPlan": "memory",
    "plan_memory": "memory",
    "RunResult": "runs",
    "train_run": "runs",
    "run_dir_for": "runs",
    "finished_run": "runs",
    "last_checkpoint": "runs",
    "read_metrics": "runs",
    "merge_adapter": "runs",
    "build_trainer": "trainer",
    "load_pairs": "preferences",
}

__all__ = sorted(_EXPORTS)


__getattr__ = _lazy_getattr(__name__, _EXPORTS, globals())
