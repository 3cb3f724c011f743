"""Hand-written questions (``eval/freeform_questions.yaml``) as a test set the fine-tuning evaluator scores.

The fine-tuning test splits are drawn from the same templates as the training data; these rows are phrased the
way people type and were written without looking at the model's outputs, so they show how the model and the
agent's checks read wordings they were never trained on. Build the JSONL, then score it like any split:

    python -m eval.freeform --out runs/freeform/test.jsonl
    python -m finetune.evaluate --backend llamacpp --adapter finetune/adapters/smollm2-agent \\
        --data runs/freeform/test.jsonl --catalog data/demo_catalog.csv
    python -m eval.rules_eval --data runs/freeform/test.jsonl --catalog data/demo_catalog.csv
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from agent.answers import chitchat_reply
from agent.protocol import format_tool_call
from core.errors import ConfigError
from core.settings import REPO_ROOT, BaseAppSettings, load_settings
from finetune.dataset import Example, chat_messages, write_jsonl
from tools.specs import TOOL_ARGS

QUESTIONS = REPO_ROOT / "eval" / "freeform_questions.yaml"
SUBKIND = {"search_products": "search", "catalog_stats": "stats", "predict_discount": "predict",
           "explain_discount": "explain", None: "chitchat"}


def _checked(tool: str, args: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        TOOL_ARGS[tool].model_validate(args)
    except Exception as exc:  # noqa: BLE001 - report any contract violation with the row it came from
        raise ConfigError(f"{where}: arguments break {tool}'s contract: {exc}") from exc
    return dict(args)


def load_examples(path: str | Path = QUESTIONS) -> list[Example]:
    """The questions as test examples (messages ending with the expected reply, expected ``{tool, arguments,
    also}``); every argument set is checked against the tool's contract."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    rows = []
    for i, item in enumerate(data.get("rows") or [], 1):
        where = f"{Path(path).name} row {i} ({item.get('q')!r})"
        question, tool = str(item.get("q") or "").strip(), item.get("tool")
        if not question:
            raise ConfigError(f"{where}: empty question")
        if tool is not None and tool not in TOOL_ARGS:
            raise ConfigError(f"{where}: unknown tool {tool!r} (known: {', '.join(TOOL_ARGS)})")
        if tool is None:
            if item.get("args") or item.get("also"):
                raise ConfigError(f"{where}: a small-talk row takes no arguments")
            args, also, reply = {}, [], chitchat_reply(question)
        else:
            args = _checked(tool, item.get("args") or {}, where)
            also = [_checked(tool, a, where) for a in item.get("also") or []]
            reply = format_tool_call(tool, args)
        rows.append(Example(f"freeform-{i:03d}", "no_tool" if tool is None else "tool_call", SUBKIND[tool], "test",
                            chat_messages(question, reply), {"tool": tool, "arguments": args, "also": also}))
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows


def load_rows(path: str | Path = QUESTIONS) -> list[dict[str, Any]]:
    """:func:`load_examples` as the evaluator's rows (dicts, as ``finetune.dataset.read_jsonl`` gives them)."""
    return [asdict(e) for e in load_examples(path)]


class FreeformSettings(BaseAppSettings):
    """``python -m eval.freeform --out runs/freeform/test.jsonl``."""

    questions: Path = QUESTIONS
    out: Path = Path("runs/freeform/test.jsonl")


def main(argv: list[str] | None = None) -> int:
    s = load_settings(FreeformSettings, sys.argv[1:] if argv is None else argv, prog="eval.freeform")
    try:
        rows = load_examples(s.questions)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s.out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(s.out, rows)
    counts = {k: sum(r.subkind == k for r in rows) for k in dict.fromkeys(SUBKIND.values())}
    print(f"wrote {len(rows)} rows to {s.out} ({', '.join(f'{k} {n}' for k, n in counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
