"""The README's commands are the product's front door: check they exist and (slow) that the app one works."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import httpx
import pytest

from core.settings import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _commands() -> list[str]:
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", README, re.S)
    assert block, "README lost its 'Two commands' block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_the_two_commands_and_dev_sh_knows_them():
    assert _commands() == ["./dev.sh app", "./dev.sh test"]
    script = (REPO_ROOT / "dev.sh").read_text()
    assert re.search(r"^\s*app\)", script, re.M) and re.search(r"^\s*test\)", script, re.M)
    assert os.access(REPO_ROOT / "dev.sh", os.X_OK)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "./dev.sh test" in ci


def test_readme_mentions_existing_paths():
    for path in re.findall(r"`((?:core|data|tools|agent|finetune|scripts|serving|llm|ops|eval|bench|docs)/[\w./-]*)`",
                           README):
        assert (REPO_ROOT / path.split(" ")[0]).exists(), f"README names {path}, which does not exist"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dev_sh_app_starts_the_app_on_the_demo_catalog():
    port = _free_port()
    env = {**os.environ, "MDI_PORT": str(port), "MDI_HOST": "127.0.0.1"}
    env.pop("MDI_CATALOG", None)
    proc = subprocess.Popen(["./dev.sh", "app"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert health is not None and health.status_code == 200, "app did not come up"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert "Traceback" not in (out or ""), out[-3000:]


def test_readme_scores_are_the_shipped_adapters():
    """The figures the README quotes are the ones in the shipped adapter's manifest (re-stamp both together)."""
    import json

    metrics = json.loads((REPO_ROOT / "finetune" / "adapters" / "smollm2-agent" / "manifest.json").read_text())
    rows = metrics["metrics"]["eval"]
    text = " ".join(README.split())
    for row in ("tuned / demo catalog", "tuned / real catalog (real-seed61)"):
        for key in ("tool_choice_accuracy", "tool_args_accuracy", "tool_args_accuracy_checked", "answer_faithfulness"):
            figure = f"{100 * rows[row][key]:.1f} %"
            assert figure in text, f"README does not quote {row} {key} = {figure}"
