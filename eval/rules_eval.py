"""How well the agent's rules read tool calls with no model: ``python -m eval.rules_eval --data test.jsonl``.

The rules (``agent.router.understand``) answer when the model's call is unparseable or rejected, or when no
model is configured. This scores them on the tool-call examples of a fine-tuning test set with the evaluator's
own argument rules (``finetune.evaluate.score_example``: tool choice, exact arguments), per tool, so a change to
the rules or to ``agent.stated`` can be measured. A question the rules read as small talk scores as no tool.

    python -m eval.rules_eval --data runs/smollm2-agent/data/test.jsonl [--catalog auto|PATH] [--out report.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agent.answers import classify_request
from agent.protocol import format_tool_call
from agent.router import CatalogVocabulary, understand
from core.settings import BaseAppSettings, load_settings


def rules_output(question: str, vocab: CatalogVocabulary, top_k: int = 5) -> str:
    """What the rules send for ``question``, in the model's output format (no call for small talk)."""
    if classify_request(question) == "chitchat":
        return ""
    call = understand(question, vocab, top_k).call
    return format_tool_call(call.name, call.arguments)


def score_rules(rows: list[dict[str, Any]], vocab: CatalogVocabulary) -> dict[str, Any]:
    """Summary (``finetune.evaluate.summarize``) of the rules on the ``tool_call`` / ``no_tool`` rows."""
    from finetune.evaluate import score_example, summarize, user_question

    scored = [score_example(row, rules_output(user_question(row["messages"]), vocab), None)
              for row in rows if row["kind"] in ("tool_call", "no_tool")]
    summary = summarize(scored)
    keep = ("n", "tool_choice_accuracy", "tool_args_accuracy")
    return {**{k: summary[k] for k in keep},
            "by_subkind": {k: {m: v for m, v in s.items() if m in ("n", "tool_ok", "args_ok")}
                           for k, s in summary["by_subkind"].items()}}


class RulesEvalSettings(BaseAppSettings):
    """``python -m eval.rules_eval --data test.jsonl``."""

    #: one test JSONL, or several separated by commas
    data: str = "runs/smollm2-agent/data/test.jsonl"
    #: the catalog the rules read names from: auto (the dataset manifest's) | a CSV path
    catalog: str = "auto"
    out: Path | None = None


def main(argv: list[str] | None = None) -> int:
    from core.logging import setup_logging
    from finetune.dataset import read_jsonl
    from finetune.evaluate import catalog_vocabulary

    setup_logging()
    s = load_settings(RulesEvalSettings, sys.argv[1:] if argv is None else argv, prog="eval.rules_eval")
    report = {}
    for data in [d.strip() for d in s.data.split(",") if d.strip()]:
        vocab, _ = catalog_vocabulary(data, s.catalog)
        if vocab is None:
            raise SystemExit(f"no catalog known for {data}: pass --catalog PATH")
        report[data] = score_rules(read_jsonl(data), vocab)
        print(json.dumps({"data": data, **report[data]}, indent=1))
    if s.out:
        Path(s.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
