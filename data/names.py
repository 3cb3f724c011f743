"""How category and brand names written by people (or a model) are matched to the catalog's own names.

``name_key`` is the one normal form every matcher uses: lower case, ``&`` read as "and", letters and digits
only — so "waffle makers and irons", "Waffle Makers & Irons" and ``WaffleMakers&Irons`` are the same name, and
"smart televisions" is ``SmartTelevisions``. :class:`NameIndex` resolves a written name to one catalog name:
the same key, else one plural/singular apart, else the closest key when it is very close (a typo such as
"GellInkRollerballPens"); ``None`` when nothing is close enough, never a guess between distant names.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Iterable

_AND = re.compile(r"\s*&\s*")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
FUZZY_CUTOFF = 0.88  # difflib ratio; one wrong/missing letter in a 10+ letter name passes, another word does not


def name_key(text: str) -> str:
    """The normal form of a category or brand name ("Kettle & Toaster Sets" -> "kettleandtoastersets")."""
    return _NON_ALNUM.sub("", _AND.sub(" and ", str(text).lower()))


def spoken_name(name: str) -> str:
    """A catalog name as people write it: 'SmartWatches' -> 'smart watches', 'USBCables' -> 'USB cables',
    'Kettle&ToasterSets' -> 'kettle and toaster sets', 'Over-Ear' -> 'over-ear'."""
    text = name.replace("&", " and ").replace(",", " ")
    words = []
    for part in text.split():
        for w in _CAMEL.split(part):
            words.append(w if (len(w) > 1 and w.isupper()) else w.lower())
    return " ".join(w for w in words if w)


def singular(key: str) -> str:
    """'kettles' -> 'kettl', 'watches' -> 'watch': the crude plural strip every matcher here shares."""
    for suffix in ("es", "s"):
        if len(key) > 4 and key.endswith(suffix):
            return key[: -len(suffix)]
    return key


@dataclass
class NameIndex:
    """Catalog names by their key, for resolving written names (see module docstring)."""

    names: dict[str, str] = field(default_factory=dict)  # key -> name as the catalog writes it

    @classmethod
    def of(cls, names: Iterable[str]) -> "NameIndex":
        out: dict[str, str] = {}
        for name in sorted({str(n) for n in names if str(n).strip()}):
            out.setdefault(name_key(name), name)
        out.pop("", None)
        return cls(out)

    def __len__(self) -> int:
        return len(self.names)

    def resolve(self, text: str, fuzzy: bool = True) -> str | None:
        """The catalog name ``text`` means, or None."""
        key = name_key(text)
        if not key:
            return None
        if key in self.names:
            return self.names[key]
        stem = singular(key)
        for candidate, name in self.names.items():
            if singular(candidate) == stem:
                return name
        if not fuzzy or len(key) < 5:
            return None
        close = difflib.get_close_matches(key, list(self.names), n=2, cutoff=FUZZY_CUTOFF)
        if len(close) == 2 and difflib.SequenceMatcher(None, key, close[0]).ratio() == \
                difflib.SequenceMatcher(None, key, close[1]).ratio():
            return None  # two equally close names: ambiguous
        return self.names[close[0]] if close else None


@dataclass(frozen=True)
class CategoryFilter:
    """The category filter of the tools for one wanted text: it matches a path when the text is part of the
    ``A|B|C`` path text, or its key is part of one level's key ("smart watch" matches ``SmartWatches``, "kettle
    and toaster" ``Kettle&ToasterSets``). Built once per wanted text, applied to many paths."""

    text: str  # lower-cased, stripped
    key: str  # name_key

    @classmethod
    def of(cls, wanted: str) -> "CategoryFilter":
        return cls(wanted.strip().lower(), name_key(wanted))

    def matches(self, path: str, level_keys: list[str] | None = None) -> bool:
        """``level_keys`` (the path's level keys) may be passed precomputed."""
        if self.text in path.lower():
            return True
        levels = level_keys if level_keys is not None else [name_key(level) for level in path.split("|")]
        return bool(self.key) and any(self.key in level for level in levels)


def category_matches(path: str, wanted: str, level_keys: list[str] | None = None) -> bool:
    """:class:`CategoryFilter` for one path."""
    return CategoryFilter.of(wanted).matches(path, level_keys)
