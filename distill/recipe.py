"""Distillation recipes: a YAML file (or the name of one in distill/recipes/) plus dotted ``key=value`` overrides.

The override syntax is the training recipes' (``harness.config.parse_overrides``: values in YAML, dotted keys set
nested values), and the ``sft:`` section has the training vocabulary: it becomes a ``training.config.SFTSettings``
through ``training.sft.sft_settings`` (SFTSettings fields by name, any other TRL ``SFTConfig`` field passed through,
``dtype`` the student's load dtype). Both ``distill.pipeline`` and ``distill.train`` read recipes through here, so
neither imports the other.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from harness.config import parse_overrides
from harness.errors import UserError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
RECIPE_KEYS = {"name", "about", "sources", "student", "teacher", "filters", "report_only", "reverify", "dataset", "sft",
               "eval", "out", "data_dir", "decontaminate", "stop_after", "sft_trainer", "max_per_problem"}


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file, or the name of one in distill/recipes/ ("qwen2.5-math-7b", "cpu_demo")."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = RECIPE_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    known = ", ".join(sorted(x.stem for x in RECIPE_DIR.glob("*.yaml")))
    raise UserError(f"recipe {name_or_path!r}: no such file or recipe name; shipped recipes: {known}")


def apply_overrides(recipe: dict, overrides: dict[str, Any] | list[str] | None) -> dict:
    """Dotted keys set nested values: {"teacher.limit": 2, "sft.max_steps": 1}; or "key=value" strings (YAML values)."""
    out = copy.deepcopy(recipe)
    if not overrides:
        return out
    items = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
    for key, value in items.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"override {key}: {p} is not a section")
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: dict | list | None = None) -> dict:
    p = recipe_path(path)
    recipe = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(recipe, dict):
        raise UserError(f"{p}: a recipe is a YAML mapping")
    recipe = apply_overrides(recipe, overrides)
    unknown = set(recipe) - RECIPE_KEYS
    if unknown:
        raise UserError(f"{p}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    if not (recipe.get("student") or {}).get("model"):
        raise UserError(f"{p}: student.model is required")
    recipe.setdefault("name", p.stem)
    recipe["_path"] = str(p)
    return recipe


__all__ = ["RECIPE_DIR", "RECIPE_KEYS", "recipe_path", "apply_overrides", "load_recipe"]
