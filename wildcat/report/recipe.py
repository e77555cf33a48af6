"""The recipe of a run: what must match the paper's for a number to stand under the paper's "ours".

A paper table compares the paper's number with ours only where our run followed the paper's
recipe (paper Section 4: backbone, pretrained weights, image size or scales, epochs, training
split), as ``config/paper.yaml`` sets it for that (dataset, method, seed). A run with another
recipe (a smoke test: 1 epoch, a small CNN, 48 px) is reported in a row of its own that says
what differs, never as a reproduction. The recorded recipe comes from metrics.json's
``provenance.config`` (docs/contracts.md); a file without provenance has no recorded recipe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wildcat.engine.config import ExperimentConfig, load_yaml, make_config
from wildcat.grid import Grid

__all__ = ["RECIPE_KEYS", "recorded_recipe", "PaperRecipes", "recipe_differences"]

#: The settings that make a run the paper's experiment.
RECIPE_KEYS = ("dataset", "backbone", "weights", "image_size_px", "epochs", "train_split")


def _recipe_of(config: Mapping[str, Any]) -> dict[str, Any]:
    if "members" in config:  # a multi-scale combination: each scale's run
        return {"members": [_recipe_of(member) for member in config["members"]]}
    defaults = ExperimentConfig().to_dict()
    return {key: config.get(key, defaults[key]) for key in RECIPE_KEYS}


def recorded_recipe(record: Mapping[str, Any]) -> str:
    """The recipe a metrics.json records, as canonical JSON; "" when it records none (schema 1)."""
    config = (record.get("provenance") or {}).get("config")
    return json.dumps(_recipe_of(config), sort_keys=True) if config else ""


class PaperRecipes:
    """The paper's recipe of each (dataset, method, seed) of a workflow config (config/paper.yaml)."""

    def __init__(self, config_path: str | Path) -> None:
        self.path = Path(config_path)
        self.grid = Grid(load_yaml(self.path))

    def recipe(self, dataset: str, method: str, seed: int) -> str | None:
        """Canonical JSON of the recipe, or None where the config has no such dataset. A method
        the config does not run on the dataset (a smoke config's own ids) is held to the
        dataset's recipe: its ``experiment`` block, which sets the backbone, weights, image size,
        epochs and training split of every paper method of the dataset."""
        if dataset not in self.grid.datasets:
            return None
        members = self.grid.multiscale_members(dataset, method) if method in self.grid.combined else {}
        if members:
            recipe = {"members": [self._single(dataset, member, seed) for member in members]}
        elif method in self.grid.methods_of(dataset) or method in self.grid.multiscale_members(dataset):
            recipe = self._single(dataset, method, seed)
        else:
            experiment = self.grid.datasets[dataset].get("experiment") or {}
            recipe = _recipe_of(make_config({**experiment, "seed": int(seed)}).to_dict())
        return json.dumps(recipe, sort_keys=True)

    def _single(self, dataset: str, method: str, seed: int) -> dict[str, Any]:
        return _recipe_of(make_config(self.grid.settings(dataset, method, seed)).to_dict())


def recipe_differences(recorded: str, expected: str) -> str:
    """What differs between a recorded and the paper's recipe, in words ("scales [32, 48] vs
    [448, 896], backbone 'cnn6' vs 'resnet101', epochs 1 vs 20"): for multi-scale combinations
    the scales, then the other keys of their first members."""
    if not recorded:
        return "recipe not recorded"
    ours, paper = json.loads(recorded), json.loads(expected)
    parts, keys = [], RECIPE_KEYS
    if "members" in ours or "members" in paper:
        scales = [[m.get("image_size_px") for m in r.get("members", [r])] for r in (ours, paper)]
        if scales[0] != scales[1]:
            parts.append(f"scales {scales[0]} vs {scales[1]}")
        ours, paper = (r.get("members", [r])[0] for r in (ours, paper))
        keys = tuple(key for key in RECIPE_KEYS if key != "image_size_px")
    parts += [f"{key} {ours.get(key)!r} vs {paper.get(key)!r}" for key in keys if ours.get(key) != paper.get(key)]
    return ", ".join(parts) or "recipe differs"
