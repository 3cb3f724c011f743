"""agent.routing: what the agent does with the model's routing reply (its call as vetted, its own words, or the
rules), including the one tool switch it makes."""
from __future__ import annotations

import pytest

from agent.protocol import ToolCall, format_tool_call
from agent.router import CatalogVocabulary, asks_for_estimate
from agent.routing import decide_route, switched_tool


@pytest.fixture(scope="module")
def vocab(demo_catalog):
    return CatalogVocabulary.from_frame(demo_catalog.frame)


SEARCH = ToolCall("search_products", {"query": "USB cable"})


@pytest.mark.parametrize("question, asks", [
    ("how much off would a USB cable at ₹349, rated 4.0 with 40k ratings get?", True),
    ("what discount should we expect on a kettle listed at Rs 1,800, 4.3 stars, 950 ratings", True),
    ("why is the predicted discount what it is for a router at ₹2,499?", True),
    ("USB cables with the biggest discount", False),        # an order, no estimate
    ("average discount by category", False),                # statistics
])
def test_asks_for_estimate(question, asks):
    assert asks_for_estimate(question) is asks


def test_a_search_for_a_stated_discount_estimate_becomes_the_discount_call(vocab):
    q = "how much off would a USB cable at ₹349, rated 4.0 with 40k ratings get?"
    call = switched_tool(SEARCH, q, vocab, 5)
    assert call.name == "predict_discount"
    args = dict(call.arguments)
    assert args.pop("category") in ("USB cable", "USBCables")  # as written, or the catalog's name for it
    assert args == {"actual_price": 349.0, "rating": 4.0, "rating_count": 40000}
    explain = switched_tool(SEARCH, "explain why a USB cable at ₹349, rated 4.0, 40k ratings gets its predicted "
                                    "discount", vocab, 5)
    assert explain.name == "explain_discount"
    # the graph's decision goes through the switch and the discount checks
    decision = decide_route(format_tool_call("search_products", {"query": "USB cable"}), q, vocab, 5)
    assert decision.call is not None and decision.call.name == "predict_discount" and decision.fallback is None


@pytest.mark.parametrize("question", [
    "how much off would a USB cable get?",                                    # fields missing: no switch
    "what discount would USB cables under ₹349 rated 4 with 40k ratings have",  # a price bound: a search
    "which USB cables rated 4 with 40k ratings would have the best discount",  # an order: a search
    "show USB cables at ₹349 rated 4.0 with 40k ratings",                     # no estimate asked
])
def test_no_switch_where_the_question_reads_as_a_search(vocab, question):
    assert switched_tool(SEARCH, question, vocab, 5) is SEARCH


def test_only_a_search_is_switched(vocab):
    stats = ToolCall("catalog_stats", {"metric": "avg_discount"})
    q = "how much off would a USB cable at ₹349, rated 4.0 with 40k ratings get?"
    assert switched_tool(stats, q, vocab, 5) is stats


def test_the_models_words_stand_for_a_question_about_the_assistant(vocab):
    reply = "I can search the catalog, estimate or explain discounts and summarise catalog statistics."
    assert decide_route(reply, "what sort of things can you do?", vocab, 5).reply == reply
    # words where a catalog question needs a tool: the rules choose
    assert decide_route(reply, "show me kettles", vocab, 5).fallback == "no_tool_call"


@pytest.mark.parametrize("question, requested, model_k, cap", [
    ("show me 10 HDMI cables", 5, None, 10),                 # the question's count raises the request's
    ("show me two kettles", 5, None, 5),                      # a smaller count leaves the cap (the tool's top_k is 2)
    ("show me 30 kettles", 5, None, 5),                       # beyond the most a request may ask for
    ("kettles, 7 of them", 5, 7, 7),                          # the model's number, written in the question
    ("the 7SEVEN remote controls", 5, 7, 5),                  # ... only as a whole token
    ("kettles", 12, None, 12),                                # the request's own top_k
])
def test_request_cap(question, requested, model_k, cap):
    from agent.routing import request_cap

    call = None if model_k is None else ToolCall("search_products", {"query": "x", "top_k": model_k})
    assert request_cap(question, requested, call) == cap


def test_small_talk_in_the_tools_field_names_is_replaced(vocab):
    garbled = "I can summarise catalog statistics, such as metric: count, avg_price and brand."
    assert decide_route(garbled, "what sort of things can you do?", vocab, 5).fallback == "chitchat_reply_replaced"
    assert decide_route("x" * 500, "hello", vocab, 5).fallback == "chitchat_reply_replaced"  # rambling
    assert decide_route("Hello! How can I help?", "hello", vocab, 5).reply == "Hello! How can I help?"
