"""agent.arguments: model tool arguments checked against the question's wording (price bounds, counts, result
numbers) and the catalog's names, and the agent applying the checks to model calls."""
from __future__ import annotations

import pandas as pd
import pytest

from agent.arguments import (brand_phrase, check_category, check_counts, check_group, check_kind, check_kind_path, check_kind_words,
                             check_metric, check_number_kinds,
                             check_order, check_price_bounds, check_query, check_query_phrase, check_query_span,
                             check_query_words,
                             check_rating, check_sort,
                             check_rating_count, resolve_names, salvage_arguments,
                             vet_arguments)
from agent.router import CatalogVocabulary
from agent.stated import PriceBound, price_bounds, stated_counts, stated_top_k


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
    # a negated comparative turns round; budgets as sentences; the direction written after the amount
    ("a kettle, nothing above 1200 rupees", [(1200, "max")]),
    ("irons not higher than Rs 900", [(900, "max")]),
    ("nothing below ₹500 please", [(500, "min")]),
    ("a hand blender, my budget is 2500", [(2500, "max")]),
    ("a smartwatch, ₹2000 max, rated 4+", [(2000, "max")]),
    ("fan heaters costing ₹1,500 or more", [(1500, "min")]),
    ("kettles 800 and below", [(800, "max")]),
    ("mixers 3k onwards", [(3000, "min")]),
    ("Brewmate Air 850 at most Rs 800", [(800, "max")]),  # words that lead into the next amount
    ("Inkwell Plus 650 min price 300 rupees", [(300, "min")]),
    # numbers that are not prices, or carry no direction, are not bounds
    ("kettles with over 10,000 ratings", []),
    ("mice having 2,000+ customer ratings", []),
    ("4.5 stars and above", []),
    ("Linqo Air 800 mouse", []),
    ("gel pens with lots of reviews, say 5k or more", []),  # a count said after its word
    ("rated 4.5 or more", []),
    ("show 5 max", []),
    ("3 Ampora Air 750 minimum rating 4.3", []),
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


def test_a_price_the_question_never_bounds_gives_way_to_its_stated_bound():
    args = {"query": "Boat A 350", "min_price": 350, "max_price": 300}
    fixed, changes = check_price_bounds(args, "find me Boat A 350 rs 200 to ₹300 4.3 star or better")
    assert (fixed["min_price"], fixed["max_price"]) == (200, 300) and changes == ["min_price=350 -> 200 (stated)"]
    # no stated bound of that direction: the model's number stays (and one bound never serves two ends)
    assert check_price_bounds({"query": "x", "min_price": 250, "max_price": 900}, "mouse 250 dpi under ₹900")[1] == []
    fixed, _ = check_price_bounds({"query": "x", "min_price": 12, "max_price": 9000}, "Redmi 12 over 5k under 9000 rs")
    assert (fixed["min_price"], fixed["max_price"]) == (5000, 9000)


def test_numbers_the_question_does_not_bound_are_left_alone():
    args = {"query": "x", "min_price": 250, "max_price": 900}
    assert check_price_bounds(args, "mouse 250 dpi under ₹900") == (args, [])
    assert PriceBound(1.0, "min").in_range is False
    # a bare number after a direction word is not money: never added ("rated at least 4.1")
    assert check_price_bounds({"query": "x"}, "mouse rated at least 4.1") == ({"query": "x"}, [])


def test_a_stated_money_bound_the_call_lacks_is_added():
    fixed, changes = check_price_bounds({"query": "x"}, "data cable within 350/- with 1000+ ratings")
    assert fixed == {"query": "x", "max_price": 350} and changes
    fixed, _ = check_price_bounds({"query": "x", "max_price": 5000}, "kettles over 2k under ₹5,000")
    assert fixed == {"query": "x", "max_price": 5000, "min_price": 2000}
    # two bounds of one direction: ambiguous, nothing added
    assert check_price_bounds({"query": "x"}, "under ₹500 or under ₹900")[1] == []


@pytest.mark.parametrize("question, counts, tops", [
    ("watches with at least 10k user reviews starting from 700 rs (6 results) please", [10000], [6]),
    ("give me 8 earphones 3.5 stars and above upto 500 rs having 2,000+ customer ratings", [2000], [8]),
    ("power banks upto ₹2,200 with over 1,000 user reviews, 4 options", [1000], [4]),
    ("mixers min 1.5 lakh ratings, top 10", [150000], [10]),
    ("show me 4.5 star phones", [], []),
    ("show 2 budget cables asap", [], [2]),
    ("show 3 stars and above pens", [], []),
])
def test_counts_and_result_numbers_read_from_the_wording(question, counts, tops):
    assert stated_counts(question) == [float(c) for c in counts]
    assert [t for t in stated_top_k(question) if t not in counts] == tops


def test_counts_and_top_k_go_where_the_question_puts_them():
    q = "get me power banks upto ₹2,200 with over 1,000 user reviews, 4 options"
    fixed, changes = check_counts({"query": "power banks", "max_price": 2200, "min_rating_count": 4}, q)
    assert fixed == {"query": "power banks", "max_price": 2200, "min_rating_count": 1000, "top_k": 4} and changes
    misread = {"query": "w", "min_rating_count": 100000, "top_k": 6}
    q2 = "watches with at least 10k user reviews (6 results)"
    assert check_counts(misread, q2)[0] == {"query": "w", "min_rating_count": 10000, "top_k": 6}
    right = {"query": "w", "min_rating_count": 10000, "top_k": 6}
    assert check_counts(right, q2) == (right, [])
    # two different counts stated: the model's choice stands
    two = {"query": "w", "min_rating_count": 7}
    assert check_counts(two, "with 100 reviews or 5,000 ratings")[0] == two


@pytest.mark.parametrize("question, top_k, kept", [
    ("which are the 7SEVEN remote controls starting from ₹450?", 7, False),  # a name's digits
    ("Redmi 5G phones under 20k", 5, False),
    ("top5 earbuds", 5, True),
    ("any three phones", 3, True),                                          # no digits: the model's reading stays
    ("show me phones, 5 of them, 5G", 5, True),                             # also written on its own
])
def test_top_k_read_off_a_name_is_dropped(question, top_k, kept):
    out, changes = check_counts({"query": "x", "top_k": top_k}, question)
    assert ("top_k" in out) is kept and bool(changes) is not kept


def test_rating_count_of_a_discount_question_is_the_stated_one():
    args = {"category": "smartphones", "actual_price": 17999, "rating": 4.1, "rating_count": 1900}
    q = "which factors push the discount of a smartphones worth 17,999/- (4.1 stars, 19k customer ratings)?"
    assert check_rating_count(args, q)[0]["rating_count"] == 19000
    assert check_rating_count({**args, "rating_count": 19000}, q)[1] == []


@pytest.fixture(scope="module")
def vocab(demo_catalog):
    return CatalogVocabulary.from_frame(demo_catalog.frame)


def test_names_resolve_to_the_catalog(vocab):
    brand = sorted(vocab.brands.values())[0]
    # a category sent as a brand moves, written as the model wrote it
    fixed, changes = resolve_names("catalog_stats", {"metric": "count", "brand": "SmartTelevisions"}, vocab)
    assert fixed == {"metric": "count", "category": "SmartTelevisions"} and changes
    # a typo'd category becomes the catalog's name; a spoken form stays spoken
    fixed, _ = resolve_names("catalog_stats", {"metric": "count", "category": "GellInkRollerballPens"}, vocab)
    assert fixed["category"] == "GelInkRollerballPens"
    same = {"metric": "count", "category": "smart televisions"}
    assert resolve_names("catalog_stats", same, vocab) == (same, [])
    # a brand sent as a category moves to brand
    fixed, _ = resolve_names("catalog_stats", {"metric": "avg_rating", "category": brand.lower()}, vocab)
    assert fixed == {"metric": "avg_rating", "brand": brand}
    # a search category that names nothing in the catalog is dropped; a real one stays
    fixed, changes = resolve_names("search_products", {"query": "tv", "category": "under Rs 22000"}, vocab)
    assert fixed == {"query": "tv"} and changes
    kept = {"query": "tv", "category": "Electronics"}
    assert resolve_names("search_products", kept, vocab) == (kept, [])
    assert resolve_names("search_products", kept, CatalogVocabulary()) == (kept, [])


def test_vet_drops_invented_optional_filters_and_rejects_invented_required_numbers(vocab):
    sent, reason = vet_arguments("search_products", {"query": "smartwatches", "max_price": 5000, "min_rating": 4.5},
                                 "Any smartwatches 4.5★ and up!", vocab)
    assert reason is None and sent == {"query": "smartwatches", "min_rating": 4.5}
    # a misread "48K" is dropped, then the stated bound takes its place
    sent, _ = vet_arguments("search_products", {"query": "smart tv", "max_price": 4800},
                            "smart tv <= Rs 48K", vocab)
    assert sent == {"query": "smart tv", "max_price": 48000}
    args = {"category": "kettle", "actual_price": 999, "rating": 4.1, "rating_count": 500}
    assert vet_arguments("predict_discount", args, "kettle at ₹1,299 rated 4.1 with 500 ratings")[1] == \
        "ungrounded_tool_args"
    # a required argument missing or invalid: the call goes to the rules
    assert vet_arguments("search_products", {"top_k": 3}, "show 3 please")[1] == "invalid_tool_call"
    # ... except a search query the question's product phrase can give: the rest of the call is kept
    sent, reason = vet_arguments("search_products", {"top_k": 6, "sort_by": "price_high"},
                                 "list 6 most expensive Karbonn standard televisions", vocab)
    assert reason is None and sent == {"top_k": 6, "sort_by": "price_high", "query": "Karbonn standard televisions"}
    assert vet_arguments("search_products", {"query": " ", "top_k": 3}, "show 3 kettles")[0]["query"] == "kettles"
    assert vet_arguments("catalog_stats", {"metric": "popularity"}, "most popular brand")[1] == "invalid_tool_call"


@pytest.mark.parametrize("name, args, question, sent", [
    # an out-of-range optional number is dropped; the stated one takes its place
    ("search_products", {"query": "scriptix pens", "min_rating": 6}, "Scriptix pens, show 6!",
     {"query": "scriptix pens", "top_k": 6}),
    ("search_products", {"query": "x", "top_k": 1000}, "x", {"query": "x"}),
    # a misspelt choice becomes the allowed value it spells; an unknown argument is dropped
    ("catalog_stats", {"metric": "total_ratings", "group_by": "band"}, "Total ratings by band please",
     {"metric": "total_ratings", "group_by": "brand"}),
    ("search_products", {"query": "kettle", "colour": "red"}, "kettle please", {"query": "kettle"}),
])
def test_vet_keeps_a_call_without_its_invalid_optional_arguments(name, args, question, sent):
    assert vet_arguments(name, args, question) == (sent, None)


def test_salvage_gives_up_on_required_arguments():
    from agent.tools import validate_args
    from core.errors import ValidationError

    args = {"category": "kettle", "actual_price": -5, "rating": 4.0, "rating_count": 10}
    with pytest.raises(ValidationError) as info:
        validate_args("predict_discount", args)
    assert salvage_arguments("predict_discount", args, info.value) is None


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


@pytest.mark.parametrize("question, brand, phrase", [
    ("What do customers say about the Auralis Plus 950 smartwatch?", "Auralis", "Auralis Plus 950 smartwatch"),
    ("Need FYA Handheld Vacuum under rs 3000 budget", "FYA", "FYA Handheld Vacuum"),
    ("get me 3M notepads and memo books with at least 1,000 ratings", "3M", "3M notepads and memo books"),
    ("Pigeon 1.5 litre kettle, 4.2 stars", "Pigeon", "Pigeon 1.5 litre kettle"),
    ("classmate gel pens pls", "Classmate", "classmate gel pens"),
    ("no brand here", "Auralis", None),
])
def test_brand_phrase(question, brand, phrase):
    assert brand_phrase(question, brand) == phrase


def test_a_query_that_drops_the_named_brand_takes_the_brand_phrase(vocab):
    q = "What do customers say about the Auralis Plus 950 smartwatch?"
    fixed, changes = check_query({"query": "customers"}, q, vocab)
    assert fixed == {"query": "Auralis Plus 950 smartwatch"} and changes
    kept = {"query": "Auralis Plus 950 smartwatch"}
    assert check_query(kept, q, vocab) == (kept, [])
    typo = {"query": "Auralsi smartwatch"}  # the brand is there, misspelt: left alone
    assert check_query(typo, q, vocab) == (typo, [])


@pytest.mark.parametrize("question, order", [
    ("Cheapest categories on average please", "asc"),
    ("which brands discount the least on average", "asc"),
    ("bottom 10 categories by avg discount", "asc"),
    ("Show most expensive categories on average", "desc"),
    ("highest discount in each category", "desc"),
    ("Stats: which cattegories have the lwoest average discount", "asc"),  # typos of ranking words count
    ("stats: wort rated brands", "asc"),
    ("average rating by category", "desc"),        # no ranking word: an ascending order goes back to the default
    ("top 3 cheapest brands", "asc"),              # words of both kinds: the model's order stands
])
def test_stats_ranking_follows_the_wording(question, order):
    args = {"metric": "avg_price", "group_by": "category", "order": "asc"}
    fixed, _ = check_order(args, question)
    assert fixed.get("order", "desc") == order
    assert check_order({**args, "order": "desc"}, "top 3 cheapest brands")[0]["order"] == "desc"
    ungrouped = {"metric": "avg_price", "order": "asc"}
    assert check_order(ungrouped, "cheapest products on average") == (ungrouped, [])


@pytest.mark.parametrize("args, question, fixed", [
    # a price bound that is the question's review count or result number is dropped
    ({"query": "fast charger", "min_price": 2000, "max_price": 800},
     "8 fast charger with more than 2000 customer ratings less than 800 rupees", {"query": "fast charger",
                                                                                   "max_price": 800}),
    ({"query": "led tv", "min_price": 30000, "max_price": 7}, "best deal led tv over 30,000/-, show 7",
     {"query": "led tv", "min_price": 30000}),
    # ... unless the question states it as a price too
    ({"query": "mouse", "max_price": 500}, "mouse under ₹500 with 500 reviews", None),
    # a review-count filter whose number is the question's price or rating is dropped
    ({"query": "fan heaters", "min_rating_count": 900}, "best deal fan heaters under 900/-, 8 options please",
     {"query": "fan heaters"}),
    ({"query": "Penmark pens", "min_rating_count": 4.0}, "Penmark pens with at least 4 stars below Rs 100",
     {"query": "Penmark pens"}),
    # ... unless the question states it as a count too; a count nothing else claims stays
    ({"query": "mouse", "min_rating_count": 500}, "mouse under ₹500 with 500+ reviews", None),
    ({"query": "Auralis Plus 550", "min_rating_count": 550}, "pls show Auralis Plus 550 rated 3.5+", None),
])
def test_number_kinds(args, question, fixed):
    out, changes = check_number_kinds(args, question)
    assert out == (fixed or args) and bool(changes) is (fixed is not None)


@pytest.mark.parametrize("args, question, fixed", [
    ({"category": "smart tv", "actual_price": 34990, "rating": 4.7, "rating_count": 4700},
     "Which factors push the discount of a smart tv at ₹ 34,990 (4.7K reviews, 4.3 star)?", {"rating": 4.3}),
    ({"query": "tv", "min_rating": 4.0}, "tv with 4.3+ stars", {"min_rating": 4.3}),
    ({"query": "tv"}, "tv with 4.3+ stars", {"min_rating": 4.3}),          # a stated floor the call lacks
    ({"query": "tv"}, "tv, 4.3 stars exactly", None),                      # a rating that is not a floor
    ({"query": "tv", "min_rating": 4.0}, "tv rated 4 or 4.5", None),         # two ratings: unchanged
])
def test_rating_as_stated(args, question, fixed):
    out, changes = check_rating(args, question)
    assert out == ({**args, **fixed} if fixed else args) and bool(changes) is (fixed is not None)


@pytest.mark.parametrize("args, question, sort", [
    ({"query": "kettle"}, "kettle with the biggest discount in Home&Kitchen", "discount"),
    ({"query": "cable", "sort_by": "rating"}, "show 2 budget cable", "price_low"),
    ({"query": "fans", "sort_by": "price_high"}, "ceiling fans with at least 3.8 stars in a budget of ₹2k!", None),
    ({"query": "tv", "sort_by": "rating"}, "top picks tv", "rating"),  # a sorting word it cannot read: kept
])
def test_sort_as_worded(args, question, sort):
    out, _ = check_sort(args, question)
    assert out.get("sort_by") == sort


def test_category_the_question_names_is_added(vocab):
    args = {"query": "kettle", "sort_by": "discount"}
    out, changes = check_category("search_products", args, "Show kettle with the biggest discount in Home&Kitchen",
                                  vocab)
    assert out == {**args, "category": "Home&Kitchen"} and changes
    stats = {"metric": "avg_discount", "group_by": "brand"}
    assert check_category("catalog_stats", stats, "average discount by brand in Home&Kitchen", vocab)[0] == \
        {**stats, "category": "Home&Kitchen"}
    # a call that already filters, or a question naming no catalog category, is left alone
    assert check_category("search_products", {**args, "category": "Electronics"}, "kettle in Home&Kitchen",
                          vocab)[1] == []
    assert check_category("catalog_stats", {**stats, "brand": "Kitchoo"}, "by brand in Home&Kitchen", vocab)[1] == []
    assert check_category("search_products", args, "kettle in steel finish", vocab)[1] == []


@pytest.mark.parametrize("query, question, fixed", [
    ("AGARO oven", "search AGARO oven toaster grills in the Home&Kitchen category", "AGARO oven toaster grills"),
    ("boAt", "Looking for boAt on-ear at most Rs. 1,300?", "boAt on-ear"),
    ("Amazon Basics", "Show 2 Amazon Basics 300 in the ₹ 700 - 800/- range", "Amazon Basics 300"),
    ("Cello ketlte and toaster", "any Cello ketlte and toaster seys sorted by price", "Cello ketlte and toaster seys"),
    ("fast charger", "8 fast charger with at least 4 stars", None),            # ends at a filter word
    ("led tv", "led tv 4.2 stars and above", None),                            # a number with a unit
    ("usb cable", "usb cable, 2 metres", None),                                # punctuation
    ("charging cable", "charging cable for phone or charging cable for tv", None),  # copied twice
    ("tv", "televisions under 500", None),                                     # not copied
    # and back to the phrase's start, over words that do not open the request
    ("electric krttle", "suggest budget iBELLL electric krttle, top 2 thanks", "iBELLL electric krttle"),
    ("c cable", "List budget type c cable up to 350 rupees", "type c cable"),
    ("Flash Edition", "Do we sll top 4 bot Flash Edition with over 100 ratings", "bot Flash Edition"),
    ("fitness watch", "Fnid highest priced fitness watch", None),              # a typo of "find" opens it
    ("smart tv", "Which are the 12 smart tv", None),
    ("Boat A 350", "find me Boat A 350 rs 200 to ₹300", None),                  # "rs" starts a price
    # a copy that skips a word or two of the phrase gets them back, not over a filter or small word
    ("Tukzre Foldable", "looking for Tukzre Fuly Foldable less than 300 rs, top 8", "Tukzre Fuly Foldable"),
    ("usb cable", "any usb type c cable under 300", "usb type c cable"),
    ("cable phone", "usb cable for phone", None),
])
def test_query_runs_to_the_end_of_the_phrase(query, question, fixed):
    out, changes = check_query_span({"query": query}, question)
    assert out["query"] == (fixed or query) and bool(changes) is (fixed is not None)


@pytest.mark.parametrize("query, question, fixed", [
    ("surgurp protectors", "Suggest cheap surge protectors minimum rating 3.0!", "surge protectors"),
    ("OnePlus wireless earbuds", "OnePlus wired earbuds under 2k", "OnePlus wired earbuds"),
    ("Philips tremor kit", "show Philips trimmer", "Philips trimmer kit"),  # aligned from the copied word before
    ("OnePlus smart tv", "OnePlus smrat tv under 20k", None),       # a typo the model wrote right: kept
    ("smart televisions", "OnePus smrat telveisions", None),        # no word copied: not this check's
    ("boAt earbuds", "show earbuds under 900", None),               # nothing alike where "boAt" stands
    ("steel bottle", "stainless steel bottle", None),               # a word left out is not a garbled one
])
def test_a_garbled_query_word_gets_the_questions_word(query, question, fixed):
    out, changes = check_query_words({"query": query}, question)
    assert out == {"query": fixed or query} and bool(changes) is (fixed is not None)


@pytest.mark.parametrize("query, question, fixed", [
    ("battery", "show usb cable within Rs. 300 thanks", "usb cable"),              # no word of the question
    ("tv", "Tell me about the smart watch from Auralis", "smart watch from Auralis"),  # request words cut
    ("4", "Got any 4 in 1 with at least 25K reviews, show 7 for my mom", None),  # a piece of it: not this check's
    ("fab", "list ceilig fabs between Rs 3500 and 4k", None),                    # a word of it, misspelt
    ("Auralis Plus 950 smartwatch", "What do customers say about the Auralis Plus 950 smartwatch?", None),
    ("heater", "I'm looking for heater (category Home&Kitchen) (7 results) asap", None),  # the whole phrase
    ("boAt earbuds", "show earbuds under 900", None),                              # a word of its own: kept
    ("usb cable", "show usb cable within Rs. 300 thanks", None),
    ("earbuds", "under 500 please", None),                                         # no phrase to take
    ("earphones", "best rated q 700", None),                                      # no product word in it
    ("top_k", "Got any 4 in 1 with at least 25K reviews, show 7 for my mom", "4 in 1"),  # digits name it too
])
def test_query_becomes_the_product_phrase(query, question, fixed):
    out, changes = check_query_phrase({"query": query, "max_price": 300}, question)
    assert out == {"query": fixed or query, "max_price": 300} and bool(changes) is (fixed is not None)


@pytest.mark.parametrize("metric, question, fixed", [
    ("avg_price", "Pls check best rared categories", "avg_rating"),             # through a typo
    ("avg_rating", "Which category has the highest average discount off MRP?", "avg_discount"),
    ("avg_rating", "which brand has the highest average price", "avg_price"),
    ("avg_price", "average discount by brand in cheap phones", None),          # its own word is there
    ("avg_rating", "average price of star projectors by brand", None),          # two named: unchanged
    ("count", "best rated brands", None),                                       # not an average
    ("avg_discount", "which brand has the most products", None),                # none named
])
def test_stats_average_is_the_one_the_question_names(metric, question, fixed):
    out, changes = check_metric({"metric": metric, "group_by": "brand"}, question)
    assert out == {"metric": fixed or metric, "group_by": "brand"} and bool(changes) is (fixed is not None)


def test_stats_grouping_and_brand_as_the_question_names_them(vocab):
    args = {"metric": "avg_discount", "category": "Choppers"}
    assert check_group(args, "average discount by braand in Choppers")[0] == {**args, "group_by": "brand"}
    assert check_group(args, "average discount in Choppers") == (args, [])
    assert check_group(args, "which brabd discounts Choppers the most")[0] == {**args, "group_by": "brand"}
    brand = sorted(vocab.brands.values(), key=len)[-1]  # a long catalog brand, cut and sent by the model
    fixed, changes = resolve_names("catalog_stats", {"metric": "max_discount", "brand": brand[1:]}, vocab,
                                   f"max discount {brand} offers")
    assert fixed["brand"] == brand and changes


def test_words_for_the_catalog_itself_are_not_names(vocab):
    # "which brsnd has ...": the typo'd grouping word sent as a category is dropped, the grouping kept
    fixed, changes = resolve_names("catalog_stats", {"metric": "max_discount", "category": "brsnd", "group_by": "brand"},
                                   vocab, "which brsnd has the deepest single discount")
    assert fixed == {"metric": "max_discount", "group_by": "brand"} and changes
    # not read as a (fuzzily matched) brand either
    fixed, _ = resolve_names("catalog_stats", {"metric": "count", "category": "braand"}, vocab)
    assert fixed == {"metric": "count"}
    fixed, _ = resolve_names("catalog_stats", {"metric": "count", "group_by": "brand", "brand": "Products"}, vocab)
    assert fixed == {"metric": "count", "group_by": "brand"}
    # nor the question's words for the whole catalog or a ranking ("in our catalog", "the leaast")
    for stray in ("catalog", "leaast", "Lowest"):
        fixed, _ = resolve_names("catalog_stats", {"metric": "avg_discount", "group_by": "brand", "category": stray},
                                 vocab)
        assert fixed == {"metric": "avg_discount", "group_by": "brand"}, stray
    # a name followed by such a noun loses the noun
    fixed, _ = resolve_names("catalog_stats", {"metric": "count", "group_by": "brand",
                                               "category": "party speakers products"}, vocab)
    assert fixed["category"] == "party speakers"
    # a name with any other word, or one the catalog really has, stays
    kept = {"metric": "count", "category": "party speakers"}
    assert resolve_names("catalog_stats", kept, vocab) == (kept, [])
    frame = pd.DataFrame({"product_id": ["P1"], "product_name": ["Brand mug"], "about_product": ["a mug"],
                          "category": ["Home|Items"], "leaf_category": ["Items"], "brand": ["Brand"]})
    own = CatalogVocabulary.from_frame(frame)
    for args in ({"metric": "count", "category": "Items"}, {"metric": "count", "brand": "Brand"}):
        assert resolve_names("catalog_stats", args, own) == (args, [])


@pytest.mark.parametrize("category, kept", [
    ("Case mrp", "Case"), ("the smart watch priced", "smart watch"), ("mrp", "mrp"), ("kettle", "kettle")])
def test_discount_kind_without_price_words(category, kept):
    args = {"category": category, "actual_price": 999, "rating": 4.0, "rating_count": 10}
    assert check_kind(args, "")[0]["category"] == kept


_PHONE_PATH = "Electronics|Mobiles&Accessories|Smartphones&BasicMobiles|Smartphones"


@pytest.mark.parametrize("category, question, want", [
    # a level, or a run of levels, of the one path the question writes: the whole path
    ("Electronics", f"predict discount for {_PHONE_PATH}, MRP 19999, rating 4.0, 45k reviews", _PHONE_PATH),
    ("smartphones", f"discount for a {_PHONE_PATH} phone at 19999?", _PHONE_PATH),
    ("Mobiles&Accessories|Smartphones&BasicMobiles", f"estimate: category {_PHONE_PATH}. price 999", _PHONE_PATH),
    ("Coffee,Tea&Espresso", "discount for Home&Kitchen|Kitchen&HomeAppliances|Coffee,Tea&Espresso at 999?",
     "Home&Kitchen|Kitchen&HomeAppliances|Coffee,Tea&Espresso"),
    # the path itself, no path, two paths, a category that is no run of the levels, pipes between words: unchanged
    (_PHONE_PATH, f"predict discount for {_PHONE_PATH}.", _PHONE_PATH),
    ("Electronics", "predict the discount for an Electronics item at 999", "Electronics"),
    ("Electronics", "Electronics|Cables or Electronics|Phones: discount at 999?", "Electronics"),
    ("Electronics|Smartphones", f"discount for {_PHONE_PATH} at 999", "Electronics|Smartphones"),
    ("dome cameras", "discount prediction for dome cameras | worth 2,499 | 4.0 stars", "dome cameras"),
])
def test_discount_kind_is_the_path_the_question_writes(category, question, want):
    args = {"category": category, "actual_price": 999, "rating": 4.0, "rating_count": 10}
    fixed, changes = check_kind_path(args, question)
    assert fixed == {**args, "category": want}
    assert bool(changes) == (want != category)


@pytest.mark.parametrize("category, question, want", [
    # the question's typo is its words: the discount tool resolves misspellings itself
    ("thermometers", "What discount should we expect on a therrmometers listed at ₹1,299, rated 4.1, 3.2k reviews?",
     "therrmometers"),
    ("water purifier", "guess the discount: category water puriifer, list price ₹8,999, rated 4.2, 950 reviews",
     "water puriifer"),
    # a word swapped for a look-alike, and a piece of a two-word kind
    ("skippers", "estimate the discount for a skipping ropes priced at ₹299 that is rated 3.9 with 88 ratings",
     "skipping ropes"),
    ("domestic cameras", "discount prediction for dome cameras | worth ₹2,499 | 4.0 stars | 5k reviews", "dome cameras"),
    ("pen", "predict discount: pen dirves, mrp ₹499, 4.2 stars, 1,200 reviews", "pen dirves"),
    ("monitor", "our new baby monitor sells at Rs 3499, 4.4 stars from 2100 buyers - discount?", "baby monitor"),
    # already the question's words: unchanged, whatever follows or precedes them
    ("smartwatch", "What's the likely discount on a smartwatch at ₹2,999 (4.1, 12k reviews)?", "smartwatch"),
    ("Bluetooth speaker", "If I list a Bluetooth speaker with 200 reviews and 4.0 stars, what discount will it carry?",
     "Bluetooth speaker"),
    ("kettle", "Expected discount % for kettle, ₹1,099, rated 3.8, 410 reviews?", "kettle"),
    # a full path, a kind like nothing in the question, a kind the question names twice: left alone
    ("Electronics|Mobiles|Cases", "discount for a phone case at 499", "Electronics|Mobiles|Cases"),
    ("telescopes", "what discount for a smartwatch at 499 rated 4 with 10 reviews", "telescopes"),
    ("mouse", "a mouse costing 499 or a mouse costing 599: discount for the first, 4.0 stars, 10 reviews", "mouse"),
])
def test_discount_kind_is_the_questions_words(category, question, want):
    args = {"category": category, "actual_price": 999, "rating": 4.0, "rating_count": 10}
    fixed, changes = check_kind_words(args, question)
    assert fixed["category"] == want
    assert bool(changes) == (want != category)
    assert {k: v for k, v in fixed.items() if k != "category"} == {k: v for k, v in args.items() if k != "category"}


@pytest.fixture(scope="module")
def brandy_vocab():
    """A catalog whose brands include words of its category levels ("USB") and letters inside them ("MI")."""
    rows = [("P1", "MI Mixer 500W", "Home&Kitchen|Kitchen&HomeAppliances|MixerGrinders", "MI"),
            ("P2", "USB cable 1m", "Computers&Accessories|Cables|USBCables", "USB"),
            ("P3", "TP-Link Nano USB WiFi Adapter", "Computers&Accessories|NetworkingDevices|WirelessUSBAdapters",
             "TP-Link"),
            ("P4", "OnePlus Nord Buds", "Electronics|Headphones,Earbuds&Accessories|Headphones|In-Ear", "OnePlus")]
    frame = pd.DataFrame({"product_id": [r[0] for r in rows], "product_name": [r[1] for r in rows],
                          "about_product": ["x"] * len(rows), "category": [r[2] for r in rows],
                          "leaf_category": [r[2].split("|")[-1] for r in rows], "brand": [r[3] for r in rows]})
    return CatalogVocabulary.from_frame(frame)


def test_a_brand_that_is_also_a_category_word_gives_way_to_the_next_brand(brandy_vocab):
    q = "USB wifi adapters from TP-Link that cost no more than ₹700"
    fixed, changes = check_query({"query": "USB wifi adapters"}, q, brandy_vocab)
    assert fixed == {"query": "TP-Link USB wifi adapters"} and changes
    # "USB" alone is a category word: nothing to add
    assert check_query({"query": "cables"}, "USB cables under 300", brandy_vocab) == ({"query": "cables"}, [])


@pytest.mark.parametrize("category, want", [
    ("MI products", {"brand": "MI"}),                            # "mi" only inside "MixerGrinders": the brand
    ("USB", {"category": "USB"}),                                # a word of "USBCables": a category
    ("OnePlus earbuds", {"brand": "OnePlus", "category": "earbuds"}),  # a brand and a kind: both
    ("OnePlus telescopes", {"category": "OnePlus telescopes"}),  # the rest names nothing: left as it is
])
def test_stats_category_that_is_a_brand(brandy_vocab, category, want):
    fixed, _ = resolve_names("catalog_stats", {"metric": "avg_discount", "category": category}, brandy_vocab,
                             f"average discount of {category}")
    assert fixed == {"metric": "avg_discount", **want}


@pytest.mark.parametrize("question, kept", [
    ("what is the average discount across the whole catalog?", False),
    ("average rating please", False),
    ("average discount per category", True),
    ("which has the higher average rating, Samsung or LG?", True),
    ("how do discounts vary?", True),
    ("where are discounts deepest on average across the catalog", True),
    ("average discount in each segment", True),
])
def test_stats_grouping_the_question_never_asks_for_is_dropped(question, kept):
    args = {"metric": "avg_discount", "group_by": "category", "order": "asc", "top_n": 3}
    fixed, changes = check_group(args, question)
    assert (fixed.get("group_by") == "category") is kept
    if not kept:
        assert fixed == {"metric": "avg_discount"} and changes
