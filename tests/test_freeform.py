"""The hand-written question set (eval/freeform.py): valid rows, scored by the evaluator's own rules."""
from __future__ import annotations

import json

import pytest

from agent.protocol import format_tool_call, parse_tool_call
from core.errors import ConfigError
from eval.freeform import QUESTIONS, load_rows, main
from finetune.evaluate import evaluate


@pytest.mark.parametrize("name", ["freeform_questions.yaml", "freeform_questions_2.yaml",
                                  "freeform_questions_real.yaml", "freeform_questions_real_2.yaml"])
def test_rows_are_valid_calls_in_the_agents_format(name):
    rows = load_rows(QUESTIONS.parent / name)
    assert len(rows) >= 20 and len({r["id"] for r in rows}) == len(rows)
    assert len({r["messages"][1]["content"] for r in rows}) == len(rows)
    assert {r["subkind"] for r in rows} == {"search", "stats", "predict", "explain", "chitchat"}
    for r in rows:
        exp = r["expected"]
        if exp["tool"] is None:
            assert "<tool_call>" not in r["messages"][-1]["content"]
            continue
        call = parse_tool_call(r["messages"][-1]["content"])
        assert (call.name, call.arguments) == (exp["tool"], exp["arguments"])


def test_the_evaluator_scores_the_set_and_its_alternatives():
    rows = load_rows()
    right = {r["id"]: r["messages"][-1]["content"] for r in rows}
    report = evaluate(lambda m: right[next(r["id"] for r in rows if r["messages"][1] == m[1])], rows)
    assert report["summary"]["tool_args_accuracy"] == 1.0

    with_also = next(r for r in rows if r["expected"]["also"])
    alt = format_tool_call(with_also["expected"]["tool"], with_also["expected"]["also"][0])
    wrong_args = {**with_also["expected"]["arguments"], "actual_price": 1.0}
    wrong = format_tool_call(with_also["expected"]["tool"], wrong_args)
    scored = {o: evaluate(lambda m, o=o: o, [with_also])["examples"][0]["args_ok"] for o in (alt, wrong)}
    assert scored == {alt: True, wrong: False}


@pytest.mark.parametrize("row, message", [
    ({"q": "x", "tool": "no_such_tool", "args": {}}, "unknown tool"),
    ({"q": "x", "tool": "search_products", "args": {"query": "a", "sort_by": "newest"}}, "contract"),
    ({"q": "", "tool": None}, "empty question"),
    ({"q": "hi", "tool": None, "args": {"query": "a"}}, "no arguments"),
])
def test_bad_rows_are_refused_with_the_row_named(tmp_path, row, message):
    path = tmp_path / "q.yaml"
    path.write_text(json.dumps({"rows": [row]}))
    with pytest.raises(ConfigError, match=message):
        load_rows(path)


def test_cli_writes_the_jsonl(tmp_path, capsys):
    out = tmp_path / "free.jsonl"
    assert main(["--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len(load_rows()) and json.loads(lines[0])["id"] == "freeform-001"
    assert f"wrote {len(lines)} rows" in capsys.readouterr().out
