"""Running Snakemake from the tests: the venv's snakemake, with the venv first on PATH (the rules
call `python -m wildcat`), and the tiny workflow config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
TINY = ROOT / "tests" / "data" / "tiny_workflow.yaml"


def snakemake(*args: str, cwd: Path = ROOT, timeout_s: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout_s)
