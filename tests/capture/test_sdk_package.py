"""The SDK is its own distribution: Python 3.9 syntax, no dependencies, installs alone."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "capture-sdk"


def test_sdk_uses_no_syntax_newer_than_python_3_9():
    sources = sorted((SDK / "src").rglob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def test_sdk_declares_python_3_9_and_no_runtime_dependencies():
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.9" and project["dependencies"] == []


def test_sdk_installs_alone_into_a_fresh_virtualenv(tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"

    def installed() -> set[str]:
        listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                                text=True, timeout=60).stdout.split()
        return {name.split("==")[0].lower() for name in listed}

    before = installed()
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(SDK)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    assert installed() - before == {"convo-capture"}, "nothing but the SDK is installed"
    code = ("import sys, tempfile\n"
            "from convo_capture import Tracker\n"
            "t = Tracker(landing_dir=tempfile.mkdtemp(), register_atexit=False)\n"
            "t.track('user_message', 'c-1', {'content': 'hi'})\n"
            "print(t.close().sent)\n")
    ran = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ran.returncode == 0 and ran.stdout.strip() == "1", ran.stderr
