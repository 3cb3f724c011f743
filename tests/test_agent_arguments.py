"""agent.arguments: price bounds read from the question's wording, and the agent applying them to model calls."""
from __future__ import annotations

import pytest

from agent.arguments import PriceBound, check_price_bounds, price_bounds


@pytest.mark.parametrize("question, bounds", [
    ("dry irons more than 1400 rupees please", [(1400, "min")]),
    ("smartwatch starting from Rs 700!", [(700, "min")]),
    ("headphones in a budget of Rs 3000", [(3000, "max")]),
    ("pens not more than ₹ 100 with 3.5+ stars", [(100, "max")]),
    ("phones no more than 15k", [(15000, "max")]),
    ("laptops for less than 1.2 lakh", [(120000, "max")]),
    ("mouse <= ₹ 850", [(850, "max")]),
    ("tv costing over rs 13,400", [(13400, "min")]),
    ("kettles priced above INR 1,299/-", [(1299, "min")]),
    ("cheap iron in the ₹500 - 600 rs range", [(500, "min"), (600, "max")]),
    ("earphones ₹ 1,000 to Rs. 2,000 cheapest first", [(1000, "min"), (2000, "max")]),
    ("chargers between 300 and 900 rupees", [(300, "min"), (900, "max")]),
    # numbers that are not prices, or carry no direction, are not bounds
    ("kettles with over 10,000 ratings", []),
    ("mice having 2,000+ customer ratings", []),
    ("4.5 stars and above", []),
    ("Linqo Air 800 mouse", []),
])
def test_price_bounds_from_wording(question, bounds):
    assert [(b.value, b.direction) for b in price_bounds(question)] == [(float(v), d) for v, d in bounds]


def test_wrong_direction_is_swapped_and_nothing_else_changes():
    args = {"query": "dry iron", "max_price": 1400, "min_rating": 4.0}
    fixed, changes = check_price_bounds(args, "dry iron more than 1400 rupees rated 4+")
    assert fixed == {"query": "dry iron", "min_price": 1400, "min_rating": 4.0} and changes
    assert args["max_price"] == 1400  # the input is not mutated
    same, none = check_price_bounds({"query": "iron", "max_price": 500}, "iron under ₹500")
    assert none == [] and same == {"query": "iron", "max_price": 500}


def test_range_is_completed_only_from_a_stated_range():
    fixed, _ = check_price_bounds({"query": "x", "max_price": 1000}, "earphones ₹1,000 to ₹2,000")
    assert (fixed["min_price"], fixed["max_price"]) == (1000, 2000)
    # two separate bounds are not a range: the rating's "above 4" is never made a price
    fixed, changes = check_price_bounds({"query": "x", "max_price": 400}, "rating above 4 not more than Rs 400")
    assert changes == [] and "min_price" not in fixed


def test_numbers_the_question_does_not_bound_are_left_alone():
    args = {"query": "x", "min_price": 250}
    assert check_price_bounds(args, "mouse 250 dpi under ₹900") == (args, [])
    assert check_price_bounds({"query": "x"}, "under ₹900") == ({"query": "x"}, [])
    assert PriceBound(1.0, "min").in_range is False


def test_agent_applies_the_check_to_model_search_calls(demo_catalog):
    from agent.fakes import FormulaDiscount, KeywordSearch, ScriptedChatModel
    from agent.graph import AgentSettings, build_agent
    from agent.memory import InProcessMemory
    from agent.protocol import format_tool_call
    from agent.tools import build_tools

    q = "Show me electric kettles above ₹1,500"
    call = format_tool_call("search_products", {"query": "electric kettles", "max_price": 1500})
    llm = ScriptedChatModel(script=lambda msgs: call if not str(msgs[-1].content).startswith("<tool_response")
                            else "Here are kettles from the catalog.")
    tools = build_tools(KeywordSearch(demo_catalog.frame), FormulaDiscount(), demo_catalog.frame)
    out = build_agent(llm, tools, InProcessMemory(), AgentSettings()).answer(q)
    assert out.path == "model"
    args = out.tool_calls[0]["args"]
    assert args.get("min_price") == 1500 and "max_price" not in args
