"""The README's two commands and CI's entry point: present, executable, strict, parseable."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/run.sh", "scripts/test.sh", ".ci/run"]


@pytest.mark.parametrize("path", SCRIPTS)
def test_script_is_executable_strict_bash(path: str) -> None:
    script = ROOT / path
    assert os.access(script, os.X_OK), f"{path} is not executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands == ["./scripts/run.sh", "./scripts/test.sh"]
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
