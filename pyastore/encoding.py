"""Categorical inputs: the category a cell names, and the float code the trees read for it.

A categorical input (docs/FORMAT.md, "Categorical inputs") carries its vocabulary in META:
``categories`` lists the category texts, and a category's **code** is its position in that
list (0, 1, 2, ...), the float32 value the payload reads in that input's column. How the
trainer ordered the list (by UTF-8 bytes, or by the training rows' positive rate) is its
business; the reader only looks texts up.

A cell becomes a code in three steps, the same for every input path (lists, dicts,
DataFrames, CSV, NDJSON, Parquet):

1. **missing**: ``None``, a float NaN (pandas' missing value in object columns), or text
   that after step 2 is empty or one of the missing-value words (``MISSING_TOKENS``) is a
   missing cell, decided by the ``missing`` rule: ``"as_missing"`` (the code is NaN: trees
   take their learned default branch), ``"error"`` (the row is refused) or a code;
2. **text**: a ``str`` with the ASCII whitespace (space, tab, LF, VT, FF, CR) at both ends
   removed, nothing else (no case folding, no Unicode normalisation); an ``int`` (Python or
   numpy, not ``bool``) by its decimal text (``415``, ``-3``); anything else -- a non-NaN
   float, a bool, bytes -- is refused, since a float cannot say which text it stands for;
3. **lookup**: the text is compared byte for byte (UTF-8) with the categories; an unknown
   text follows the ``unseen`` rule: ``"missing"`` (treated as a missing cell, step 1's rule
   decides), ``"error"`` (refused) or a code.

The value type ``Categorical`` obeys ``Categorical.from_meta(c.to_meta()) == c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pyastore.errors import FormatError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

# Cell text that means "missing" (NaN) in every textual input: CSV, NDJSON strings, lists.
MISSING_TOKENS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"})
WHITESPACE = " \t\n\r\x0b\x0c"  # what is removed from both ends of a category's text
MISSING_RULES = ("as_missing", "error")  # or a code
UNSEEN_RULES = ("missing", "error")  # or a code
TYPE = "categorical"  # an input's META ``type``, and its ``missing`` (older readers refuse it)


class CategoryError(ValueError):
    """A cell a categorical input refuses; ``str()`` says why, without row or column."""


def category_text(text: str) -> str:
    """A category's text as compared: ``text`` without ASCII whitespace at either end."""
    return text.strip(WHITESPACE)


def _rule_problem(rule: Any, names: tuple[str, ...], n_categories: int) -> str | None:
    if isinstance(rule, str):
        return None if rule in names else f"{rule!r} is not one of {', '.join(names)}"
    if type(rule) is not int:
        return f"{rule!r} is neither one of {', '.join(names)} nor a code"
    if not 0 <= rule < n_categories:
        return f"code {rule} is not one of the {n_categories} categories' codes"
    return None


@dataclass(frozen=True)
class Categorical:
    """A categorical input's vocabulary (``categories``: code = position) and its rules for
    a missing cell (``missing``: ``"as_missing"``, ``"error"`` or a code) and for a text not
    in the vocabulary (``unseen``: ``"missing"``, ``"error"`` or a code).

    Round-trip law: ``Categorical.from_meta(c.to_meta()) == c``.
    """

    categories: tuple[str, ...]
    missing: str | int = "as_missing"
    unseen: str | int = "missing"
    _codes: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        problem = self.problem()
        if problem is not None:
            raise FormatError(problem)
        object.__setattr__(self, "_codes", {c: i for i, c in enumerate(self.categories)})

    def problem(self) -> str | None:
        """Why this is not a valid vocabulary and rules, or None."""
        seen: dict[str, int] = {}
        for position, text in enumerate(self.categories):
            if not isinstance(text, str):
                return f"categories[{position}] {text!r} is not text"
            if category_text(text) != text:
                return (f"categories[{position}] {text!r} has whitespace at an end (categories "
                        "are stored as they are compared)")
            if text in MISSING_TOKENS:
                return f"categories[{position}] {text!r} is a missing-value word, not a category"
            earlier = seen.setdefault(text, position)
            if earlier != position:
                return f"categories[{earlier}] and categories[{position}] are both {text!r}"
        if len(self.categories) >= 1 << 24:
            return (f"{len(self.categories)} categories: codes must stay below 2^24, where "
                    "float32 holds every whole number")
        for name, rule, names in (("missing", self.missing, MISSING_RULES),
                                  ("unseen", self.unseen, UNSEEN_RULES)):
            why = _rule_problem(rule, names, len(self.categories))
            if why is not None:
                return f"{name}: {why}"
        return None

    @property
    def scores_nan(self) -> bool:
        """True when some cell becomes NaN (a missing cell, or an unseen one counted as one)."""
        return self.missing == "as_missing"

    def to_meta(self) -> dict[str, Any]:
        """The ``categorical`` map of a META input (docs/FORMAT.md)."""
        return {"categories": list(self.categories), "missing": self.missing,
                "unseen": self.unseen}

    @classmethod
    def from_meta(cls, entry: Any, where: str = "categorical") -> Categorical:
        """The ``categorical`` map of a META input; ``FormatError`` naming ``where`` when it is
        malformed."""
        if not isinstance(entry, dict) or not isinstance(entry.get("categories"), list):
            raise FormatError(f"{where} must be a map with a 'categories' list")
        try:
            return cls(tuple(entry["categories"]), entry.get("missing", "as_missing"),
                       entry.get("unseen", "missing"))
        except FormatError as exc:
            raise FormatError(f"{where}: {exc.message}") from None

    # ---- cells to codes ------------------------------------------------------------------

    def _missing_code(self, why: str) -> float:
        if self.missing == "as_missing":
            return math.nan
        if self.missing == "error":
            raise CategoryError(why)
        return float(self.missing)

    def code(self, value: Any) -> float:
        """The float code of one cell (module docstring); ``CategoryError`` when refused."""
        if isinstance(value, str):
            text = category_text(value)
        elif value is None or (isinstance(value, float) and value != value):
            return self._missing_code("a missing value, which this input refuses")
        elif type(value) is int:
            text = str(value)
        else:
            text = self._text_of_other(value)
        found = self._codes.get(text)
        if found is not None:
            return float(found)
        if text in MISSING_TOKENS:
            return self._missing_code(f"{value!r} is a missing value, which this input refuses")
        return self.unseen_code(value)

    def unseen_code(self, value: Any) -> float:
        """The code of a text that is not a category (the ``unseen`` rule)."""
        if self.unseen == "missing":
            return self._missing_code(f"{value!r} is not one of the {len(self.categories)} "
                                      "known categories (unseen categories count as missing, "
                                      "which this input refuses)")
        if self.unseen == "error":
            shown = ", ".join(repr(c) for c in self.categories[:5])
            more = ", ..." if len(self.categories) > 5 else ""
            raise CategoryError(f"{value!r} is not one of the {len(self.categories)} known "
                                f"categories ({shown}{more})")
        return float(self.unseen)

    def _text_of_other(self, value: Any) -> str:
        item = getattr(value, "item", None)  # numpy scalars
        if callable(item) and getattr(value, "shape", None) == ():
            plain = item()
            if isinstance(plain, str) or type(plain) is int:
                return category_text(plain) if isinstance(plain, str) else str(plain)
            if isinstance(plain, float) and plain != plain:
                return ""  # a missing cell
        if type(value).__name__ in ("NAType", "NaTType"):
            return ""  # pandas.NA / NaT: a missing cell
        raise CategoryError(f"{value!r} is not text: this input is categorical (give the "
                            "category's text)")

    def codes(self, values: Iterable[Any]) -> list[float]:
        """``code`` of every value, in order."""
        return [self.code(v) for v in values]

    def lookup(self, texts: Iterable[Any]) -> list[float | None]:
        """The code of every value, or None where ``code`` would refuse it (for tables that
        map a column's distinct values once: a DataFrame category, a Parquet dictionary)."""
        table: list[float | None] = []
        for text in texts:
            try:
                table.append(self.code(text))
            except CategoryError:
                table.append(None)
        return table
