"""The code passes the project's ruff rules (pyproject.toml, [tool.ruff.lint]), and those rules can fail."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), *args], capture_output=True, text=True, check=False)


def test_the_code_passes_ruff():
    done = _ruff(str(ROOT))
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_rules_catch_an_unused_import_and_a_bare_raise_in_except(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f(x):\n    try:\n        return int(x)\n    except ValueError:\n"
                   "        raise RuntimeError('no')\n", encoding="utf-8")
    done = _ruff(str(bad))
    assert done.returncode == 1
    assert "F401" in done.stdout and "B904" in done.stdout, done.stdout
