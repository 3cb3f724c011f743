"""agent.stated: what a question states in words (ratings, sort order, result numbers, a named category)."""
from __future__ import annotations

import pytest

from agent.stated import (price_bounds, product_phrase, stated_category, stated_group, stated_kind, stated_order,
                          stated_ratings, stated_sort, stated_top_k, words_of_sorting)
from data.names import NameIndex


@pytest.mark.parametrize("question, ratings", [
    ("smart tv at ₹ 34,990 (4.7K reviews, 4.3 star)", [(4.3, False)]),  # "4.7K reviews" is a count
    ("MRP 4,799/-, 3.7 stars with 4,200 reviews", [(3.7, False)]),
    ("mixers at 2199 rupees with 6.5K ratings, 4.4★", [(4.4, False)]),
    ("tv with 4.3+ stars", [(4.3, True)]),
    ("Find Lenovo mice below 600 with 4+ rating", [(4.0, True)]),
    ("with 4+ ratings", []),  # a count of ratings, if anything
    ("kettles rated at least 4", [(4.0, True)]),
    ("phones 3.8 stars and above over 5500 rupees", [(3.8, True)]),
    ("minimum rating 4.2 please", [(4.2, True)]),
    ("rated 4.1 but only 3 stars for battery", [(4.1, True), (3.0, False)]),
    ("kettles with 10,000 ratings under ₹2,000", []),
])
def test_stated_ratings(question, ratings):
    assert [(r.value, r.floor) for r in stated_ratings(question)] == ratings


@pytest.mark.parametrize("question, sort, worded", [
    ("show 2 budget Storite charging cable", "price_low", True),
    ("find ceiling fans with at least 3.8 stars in a budget of ₹2k!", None, False),  # a budget limit is no order
    ("earphones under 500 budget", None, False),
    ("show best deal led tv over 30,000/-", "discount", True),  # "best deal" is not best rated
    ("Linqo Air 25 ordered by rating", "rating", True),
    ("kettles price high to low", "price_high", True),
    ("electric kettles price low to high between Rs 800 and 900", "price_low", True),
    ("most discounted phones, cheapest first", None, True),  # two orders: none stated
    ("mixie priced above Rs 2K", None, False),
    ("Do we sell deepset discoynt electric grinders", "discount", True),  # typos of sort words
    ("need hihgly rated wall adapter", "rating", True),
    ("Pls show top 12 bets deal smart televisions", "discount", True),  # short words: two letters swapped
    ("tpo rated earbuds", "rating", True),
    ("pot holders under 300", None, False),
    ("lint shavers cheaper than 500 rupees", None, False),  # a comparative is a bound, not an order
    ("power banks costlier than 2k", None, False),
    ("Which wall chargers cost the least?", "price_low", True),
    ("tvs that cost the most", "price_high", True),
    ("I want 7 Bluetooth speakers with good ratings", "rating", True),
    ("well-rated kettles", "rating", True),
    ("kettles with high ratings count", None, True),  # many ratings, not an order
])
def test_stated_sort(question, sort, worded):
    assert stated_sort(question) == sort
    assert words_of_sorting(question) is worded


@pytest.mark.parametrize("question, top_k", [
    ("8 fast charger with at least 4 stars", [8]),
    ("Which are the 12 electric kettles in Home&Kitchen", [12]),
    ("Which are the 3 Inkell gel pens having 1K+ user reviews", [3]),
    ("show me 5 star rated phones", []),  # "5 star" is a rating
    ("3.5 stars and up kettles", []),
    ("10k 8k 4k within Rs. 1,000", []),
    # spelled out, and after "recommend / suggest"
    ("Give me two Zebronics speakers", [2]),
    ("the five cheapest kettles", [5]),
    ("top ten earbuds", [10]),
    ("Recommend three neckbands with good bass", [3]),
    ("suggest me 4 kettles", [4]),
    ("show me four star kettles", []),  # a rating
    ("two-door fridge", []),
    ("I need one kettle", []),  # "one" is as often a pronoun
])
def test_stated_top_k_reads_leading_numbers(question, top_k):
    assert stated_top_k(question) == top_k


NAMES = NameIndex.of(["Home&Kitchen", "Electronics", "SmartTelevisions", "Kettles&HotWaterDispensers",
                      "OfficeProducts"])


@pytest.mark.parametrize("question, category", [
    ("Show kettle with the biggest discount in Home&Kitchen for office use", "Home&Kitchen"),
    ("wireless headphones for less than 5,000/- from the Electronics section?", "Electronics"),
    ("disposable batteries (category Electronics) under 200 rs", "Electronics"),
    ("anything in the smart televisions category", "SmartTelevisions"),
    ("phones in black under ₹500", None),  # a word after "in" that is no catalog category
    ("tv in Electronics or in OfficeProducts", None),  # two: none stated
    ("electronics deals", None),  # named, but not as a place to look
])
def test_stated_category(question, category):
    assert stated_category(question, NAMES) == category


@pytest.mark.parametrize("question, group", [
    ("average discount by braand in Choppers", "brand"),
    ("avg rating per category", "category"),
    ("average price by price band", "price_band"),
    ("count by category and by brand", None),  # two: none stated
    ("products by boAt", None),                 # "by" a brand is not a grouping
    ("stats: which brabd discounts graphics tablets the most", "brand"),  # ranked, typo'd
    ("what category has the highest average rating", "category"),
    ("top 5 brands by total ratings", "brand"),
    ("which price band has the most products", "price_band"),
    ("which is the best rated product", None),  # "which" before no grouping word
    ("which products does boAt have the most of", None),
])
def test_stated_group(question, group):
    assert stated_group(question) == group


@pytest.mark.parametrize("question, phrase", [
    ("find me top rated charger from the Electronics section for office use", "charger"),
    ("can you find roollerball pesn minimum rating 4.5 100 rs to ₹100?", "roollerball pesn"),
    ("got any type c cable below 600 rs (3 results)", "type c cable"),
    ("Got any Pulsefit smartwatch under Rs 800 with rating >= 3 thanks", "Pulsefit smartwatch"),
    ("highest rated rollerball pens in OfficeProducts with at least 100,000 ratings please", "rollerball pens"),
    ("Give me 12 lowest priced Kitchoo Max 10 asap", "Kitchoo Max 10"),  # "Max 10" is a model, not a bound
    ("need Inkwell gel ink rollerball pens, 6 options for a gift", "Inkwell gel ink rollerball pens"),
    ("Show 2 Amazon Basics 300 in the ₹ 700 - 800/- range rated at least 4.2", "Amazon Basics 300"),
    ("I'm looking for heater (7 results) asap", "heater"),
    ("under ₹500 please", None),
])
def test_product_phrase(question, phrase):
    assert product_phrase(question, NAMES) == phrase


def test_bounds_carry_their_words_and_place():
    under, = price_bounds("kettles under ₹500 please")
    assert (under.value, under.direction, under.cue, under.marked) == (500, "max", "under", True)
    assert "kettles under ₹500 please"[slice(*under.span)] == "under ₹500"
    lo, hi = price_bounds("pens 100 rs to ₹100")  # a range whose ends are equal is still a range
    assert (lo.value, hi.value, lo.in_range, lo.cue) == (100, 100, True, "range")


@pytest.mark.parametrize("question, bounds", [
    ("kettle not less than ₹500", [(500, "min")]),  # a negated ceiling is a floor
    ("pens no less than rs 100", [(100, "min")]),
    ("mouse less than 500 rupees", [(500, "max")]),
    ("fan greater than ₹900", [(900, "min")]),
    ("iron ₹300-₹400", [(300, "min"), (400, "max")]),
    ("iron anywhere between 300 rs and 400 rs", [(300, "min"), (400, "max")]),
    ("cable from ₹100 - 200", [(100, "min"), (200, "max")]),
])
def test_price_bound_directions(question, bounds):
    assert [(b.value, b.direction) for b in price_bounds(question)] == bounds


@pytest.mark.parametrize("question, kind", [
    ("what's the likely discount on a WeighingScales MRP rs 849 (4.5 stars, 474 ratings)?", "WeighingScales"),
    ("what discount should we expect on a usb cable costing 599 rupees", "usb cable"),
    ("Which factors push the discount of a smart tv at ₹ 34,990 (4.7K reviews, 4.3 star)?", "smart tv"),
    ("discount prediction for renote controls | listed at ₹2999 | 227 ratings", "renote controls"),
    ("what is a good discount for a kettle priced 999", "kettle"),
    ("predict the discount", None),
])
def test_stated_kind(question, kind):
    assert stated_kind(question) == kind


@pytest.mark.parametrize("question, order", [
    ("which categories have the lowet average discount", "asc"),   # a typo of "lowest"
    ("Which brands discount the leasst on average", "asc"),
    ("most reviewed brands", "desc"),
    ("top 3 cheapest brands", None),                                # both kinds
    ("average rating by category", None),
])
def test_stated_order(question, order):
    assert stated_order(question) == order
