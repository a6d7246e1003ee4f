"""SMS segment counting for the GSM 03.38 7-bit alphabet and UCS-2.

A text made only of GSM 03.38 characters is sent as GSM-7: one segment holds
160 septets, each part of a longer message 153 (the rest is the
concatenation header). Characters of the extension table cost two septets
(an escape and the character) and that pair is never split across parts.

Any other character makes the whole message UCS-2: one segment holds 70
UTF-16 code units, each part of a longer message 67. A character outside the
Basic Multilingual Plane (most emoji) is a surrogate pair of two code units,
and a pair is never split across parts either.

:func:`downgrade` replaces typographic characters (curly quotes, dashes,
special spaces) with their GSM-7 equivalents; it never touches a letter, so
a word or a name that needs UCS-2 keeps its accents and the text is UCS-2.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM_BASIC",
    "GSM_EXTENSION",
    "Segments",
    "count",
    "cut",
    "downgrade",
    "fit",
    "is_gsm",
]

#: The GSM 03.38 basic character table (the escape code itself excluded).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

#: Characters reached through the escape code: each costs two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM_ALL = GSM_BASIC | GSM_EXTENSION

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segments:
    """How a text travels: its encoding, its length in that encoding's units
    (septets for GSM-7, UTF-16 code units for UCS-2) and its number of parts."""

    encoding: Encoding
    units: int
    segments: int


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return _GSM_ALL.issuperset(text)


def count(text: str) -> Segments:
    """Encoding, length and number of SMS segments of ``text``.

    An empty text is one (empty) segment.
    """
    if is_gsm(text):
        units = len(text)
        if not GSM_EXTENSION.isdisjoint(text):
            units += sum(map(text.count, GSM_EXTENSION))
        return Segments("GSM-7", units, _parts(text, units, GSM_SINGLE, GSM_PART, _gsm_width))
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    return Segments("UCS-2", units, _parts(text, units, UCS2_SINGLE, UCS2_PART, _utf16_width))


def _gsm_width(c: str) -> int:
    return 2 if c in GSM_EXTENSION else 1


def _utf16_width(c: str) -> int:
    return 2 if ord(c) > 0xFFFF else 1


def _parts(text: str, units: int, single: int, part: int, width: Callable[[str], int]) -> int:
    """Parts needed for ``text`` of ``units`` units, never splitting a character."""
    if units <= single:
        return 1
    if units == len(text):  # every character is one unit: none can straddle a boundary
        return -(-units // part)
    parts, used = 1, 0
    for c in text:
        w = width(c)
        if used + w > part:
            parts, used = parts + 1, 0
        used += w
    return parts


def cut(text: str, n: int) -> str:
    """The first ``n`` characters of ``text``, or fewer so that a letter is
    never parted from the accents that follow it (``"A\u0301"`` is one letter)."""
    while 0 < n < len(text) and unicodedata.combining(text[n]):
        n -= 1
    return text[:n]


def fit(text: str, max_segments: int, *, keep_end: str = "", ellipsis: str = "...") -> str:
    """The longest cut of ``text`` that fits in ``max_segments``.

    When ``text`` is already short enough it is returned unchanged. Otherwise
    the text is cut, ``ellipsis`` marks the cut, and ``keep_end`` (when
    ``text`` ends with it) is kept after the cut, e.g. an opt-out line.
    """
    if count(text).segments <= max_segments:
        return text
    tail = ""
    if keep_end and text.endswith(keep_end) and count(ellipsis + keep_end).segments <= max_segments:
        head, tail = text[: -len(keep_end)], keep_end
    else:
        head = text

    def candidate(n: int) -> str:
        return cut(head, n).rstrip() + ellipsis + tail

    lo, hi = 0, len(head)  # candidate(lo) fits (checked above or below), candidate(hi) does not
    if count(candidate(0)).segments > max_segments:
        return _prefix(text, max_segments)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(candidate(mid)).segments <= max_segments:
            lo = mid
        else:
            hi = mid
    return candidate(lo)


def _prefix(text: str, max_segments: int) -> str:
    """The longest plain prefix of ``text`` that fits in ``max_segments``."""
    lo, hi = 0, len(text)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(cut(text, mid)).segments <= max_segments:
            lo = mid
        else:
            hi = mid
    return cut(text, lo)


#: Typographic characters and their GSM-7 equivalents. No letter is here (nor
#: the middle dot, which is part of Catalan words such as "Gal·la"): a letter
#: outside GSM-7 (á, í, ó, ú, Ł, ...) is written as it is, in UCS-2.
_DOWNGRADES: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-",
    "\u2026": "...",
    "\u2022": "-",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2007": " ", "\u2009": " ",
    "\u202f": " ", "\t": " ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
}
_TABLE = str.maketrans(_DOWNGRADES)


def downgrade(text: str) -> str:
    """``text`` with typographic non-GSM characters replaced by GSM-7 equivalents.

    Everything else (every letter among them) is left alone, so a text with
    such a character still counts as UCS-2.
    """
    if is_gsm(text):
        return text
    return text.translate(_TABLE)
