"""data.names: the one normal form of category/brand names, and resolving written names to catalog names."""
from __future__ import annotations

import pytest

from data.names import NameIndex, category_matches, name_key, spoken_name


@pytest.mark.parametrize("a, b", [
    ("waffle makers and irons", "WaffleMakers&Irons"),
    ("Kettle & Toaster Sets", "kettle and toaster sets"),
    ("smart televisions", "SmartTelevisions"),
    ("In-Ear", "in ear"),
])
def test_name_key_is_shared_by_spellings(a, b):
    assert name_key(a) == name_key(b)


def test_spoken_name():
    assert spoken_name("SmartWatches") == "smart watches"
    assert spoken_name("USBCables") == "USB cables"
    assert spoken_name("Kettle&ToasterSets") == "kettle and toaster sets"


def test_resolve_exact_plural_typo_and_refuses_distant_or_ambiguous_names():
    ix = NameIndex.of(["GelInkRollerballPens", "SmartTelevisions", "WaffleMakers&Irons", "Home&Kitchen", "Mice"])
    assert ix.resolve("waffle makers and irons") == "WaffleMakers&Irons"
    assert ix.resolve("smart television") == "SmartTelevisions"
    assert ix.resolve("GellInkRollerballPens") == "GelInkRollerballPens"
    assert ix.resolve("GellInkRollerballPens", fuzzy=False) is None
    assert ix.resolve("office") is None and ix.resolve("") is None
    assert ix.resolve("Mica") is None  # short names are never fuzzy-matched
    twins = NameIndex.of(["Zenvora", "Zenvara"])
    assert twins.resolve("Zenvura") is None  # equally close to two names


def test_category_filter_matches_path_text_or_a_level_key():
    path = "Home&Kitchen|Kitchen&HomeAppliances|Kettle&ToasterSets"
    assert category_matches(path, "kettle and toaster")
    assert category_matches(path, "home & kitchen") and category_matches(path, "Home&Kitchen|Kitchen")
    assert not category_matches(path, "smart watches")
