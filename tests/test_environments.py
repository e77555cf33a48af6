"""The conda environment files (environment.yml, workflow/envs/*.yaml) must pin exactly the
versions of requirements/lock.txt, which every pip install path uses. Conda is not on our
machines, so this is checked by parsing the files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = [ROOT / "environment.yml", *sorted((ROOT / "workflow" / "envs").glob("*.yaml"))]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normalize(name)] = version
    return pins


def pip_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dependency in env["dependencies"]:
        if isinstance(dependency, dict):
            for requirement in dependency["pip"]:
                name, version = requirement.split("==")
                pins[_normalize(name)] = version
    return pins


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_pins_equal_the_lock(path):
    lock = lock_versions()
    pins = pip_pins(path)
    assert pins, f"{path} pins nothing"
    for name, version in pins.items():
        assert name in lock, f"{path.name}: {name} is not in requirements/lock.txt"
        assert version == lock[name], f"{path.name}: {name}=={version}, lock has {lock[name]}"


def test_environment_yml_covers_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    names = {_normalize(re.split(r"[<>=!\[ ]", requirement, maxsplit=1)[0]) for requirement in declared}
    pinned = pip_pins(ROOT / "environment.yml")
    assert names - set(pinned) == set()


def test_lock_pins_the_required_versions():
    lock = lock_versions()
    assert lock["torch"] == "2.14.1"
    assert lock["torchvision"] == "0.29.1"
    assert lock["pydensecrf2"] == "1.1"
    assert lock["snakemake"].startswith("9.")
    assert lock["snakemake-executor-plugin-slurm"] == "2.8.0"
    assert "pydensecrf" not in lock  # never both: the original 1.0rc3 does not build on 3.11
