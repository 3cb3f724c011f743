"""eval.rules_eval: the agent's rules scored on tool-call examples with the evaluator's argument rules."""
from __future__ import annotations

from agent.prompts import SYSTEM_PROMPT
from agent.router import CatalogVocabulary
from eval.rules_eval import main, rules_output, score_rules


def _row(question, tool, arguments, kind="tool_call", subkind="search"):
    return {"id": question, "kind": kind, "subkind": subkind, "expected": {"tool": tool, "arguments": arguments},
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question},
                         {"role": "assistant", "content": ""}]}


def test_rules_are_scored_per_tool(demo_catalog, tmp_path):
    vocab = CatalogVocabulary.from_frame(demo_catalog.frame)
    rows = [
        _row("Got any kettles under Rs 800 with rating >= 4 thanks", "search_products",
             {"query": "kettles", "max_price": 800, "min_rating": 4.0}),           # read exactly
        _row("kettles under Rs 800", "search_products", {"query": "kettles", "max_price": 900}),  # wrong number
        _row("hello there!", None, {}, kind="no_tool", subkind="chitchat"),       # small talk: no call
        _row("how many brands are there", "search_products", {"query": "brands"}),  # another tool: wrong
        _row("an answer row is not scored", None, {}, kind="answer", subkind="search"),
    ]
    assert rules_output("hello there!", vocab) == ""
    report = score_rules(rows, vocab)
    assert report["n"] == 4 and report["tool_choice_accuracy"] == 3 / 4 and report["tool_args_accuracy"] == 2 / 4
    assert report["by_subkind"]["tool_call/search"] == {"n": 3, "tool_ok": round(2 / 3, 4), "args_ok": round(1 / 3, 4)}


def test_rules_eval_cli(demo_catalog_path, tmp_path):
    import json

    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps(_row("show 3 kettles", "search_products", {"query": "kettles", "top_k": 3})) + "\n")
    out = tmp_path / "r.json"
    assert main(["--data", str(data), "--catalog", str(demo_catalog_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())[str(data)]["tool_args_accuracy"] == 1.0
