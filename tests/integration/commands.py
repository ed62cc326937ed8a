"""Running the repository's tools as a user would: ``python tools/<name>.py ...`` from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def tool(name: str, *args: str) -> list[str]:
    """The command line of ``tools/<name>`` with ``args``, under this interpreter."""
    return [sys.executable, str(REPO_ROOT / "tools" / name), *args]


def run(command: list[str], timeout: float = 120) -> str:
    """Run ``command`` in the repository root; fail the test with its output tail unless it exits 0."""
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr
