"""SMS segment counting, typographic downgrading and cutting."""

import unicodedata

import pytest

from savin.rendering import gsm
from savin.rendering.gsm import Segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length, segments):
    assert gsm.count("a" * length) == Segments("GSM-7", length, segments)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length, segments):
    text = "Ж" * length
    assert gsm.count(text) == Segments("UCS-2", length, segments)


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_characters_cost_two_septets(char):
    assert gsm.count(char) == Segments("GSM-7", 2, 1)
    assert gsm.count("a" * 158 + char) == Segments("GSM-7", 160, 1)
    assert gsm.count("a" * 159 + char) == Segments("GSM-7", 161, 2)


def test_an_escape_pair_is_never_split_across_parts():
    # 152 septets then a two-septet character: it cannot straddle the 153 boundary.
    assert gsm.count("a" * 152 + "€" + "a" * 152).segments == 3
    assert gsm.count("a" * 151 + "€" + "a" * 153).segments == 2
    assert gsm.count("a" * 151 + "€" + "a" * 153).units == 306


def test_mixed_text_counts_extension_characters_twice():
    text = "Balance {due}: 10€"
    assert gsm.count(text) == Segments("GSM-7", len(text) + 3, 1)


def test_emoji_are_surrogate_pairs():
    assert gsm.count("🙂") == Segments("UCS-2", 2, 1)
    assert gsm.count("🙂" * 35) == Segments("UCS-2", 70, 1)
    assert gsm.count("🙂" * 35 + "a") == Segments("UCS-2", 71, 2)


def test_a_surrogate_pair_is_never_split_across_parts():
    # 66 units then a pair: it goes whole into the second part.
    assert gsm.count("a" * 66 + "🙂" + "a" * 66).segments == 3
    assert gsm.count("a" * 65 + "🙂" + "a" * 67).segments == 2


def test_one_non_gsm_character_makes_the_whole_text_ucs2():
    assert gsm.count("a" * 69 + "Ł").segments == 1
    assert gsm.count("a" * 70 + "Ł") == Segments("UCS-2", 71, 2)
    # In UCS-2 the GSM extension characters cost one unit.
    assert gsm.count("€Ł") == Segments("UCS-2", 2, 1)


def test_is_gsm():
    assert gsm.is_gsm("Hola, ¿qué tal? Ñandu é É ü Ü ¡ à è ì ò ù Ç @£$¥ {}[]~^|\\€")
    assert not gsm.is_gsm("á")
    assert not gsm.is_gsm("Łukasz")
    assert not gsm.is_gsm("🙂")


def test_downgrade_changes_typography_only():
    assert gsm.downgrade("“Quoted” ‘single’ – — …\u00a0x") == "\"Quoted\" 'single' - - ... x"
    text = "¿Está aquí? Sí, mañana. ÁÍÓÚ áíóú ç Zoë Gal·la"
    assert gsm.downgrade(text) == text
    assert gsm.count(gsm.downgrade("Notificación a víctimas: audiencia programada")).encoding == "UCS-2"


def test_no_letter_is_ever_downgraded():
    for char, replacement in gsm._DOWNGRADES.items():
        assert not unicodedata.category(char).startswith("L"), char
        assert gsm.is_gsm(replacement)


def test_downgrade_leaves_what_has_no_equivalent():
    text = gsm.downgrade("Łukasz Żółć 🙂 – ok")
    assert text == "Łukasz Żółć 🙂 - ok"
    assert gsm.count(text).encoding == "UCS-2"


def test_downgrade_of_gsm_text_is_the_same_text():
    text = "Reply STOP to opt out"
    assert gsm.downgrade(text) is text


def test_fit_keeps_the_end_and_fits():
    body = "word " * 100
    text = body + "Reply STOP to opt out"
    cut = gsm.fit(text, 2, keep_end=" Reply STOP to opt out")
    assert cut.endswith("... Reply STOP to opt out")
    assert gsm.count(cut).segments == 2
    assert gsm.count(cut).units > 290  # the room is used, not wasted


def test_fit_leaves_short_text_alone_and_counts_ucs2():
    assert gsm.fit("short", 1) == "short"
    cut = gsm.fit("Ł" * 500, 2)
    assert cut.endswith("...") and gsm.count(cut) == Segments("UCS-2", 134, 2)


def test_fit_without_room_for_the_end_cuts_plainly():
    cut = gsm.fit("x" * 400 + "y" * 200, 1, keep_end="y" * 200)
    assert cut == "x" * 157 + "..."


def test_a_cut_never_parts_a_letter_from_its_accents():
    decomposed = unicodedata.normalize("NFD", "Ángel")  # "A", a combining acute, "ngel"
    assert gsm.cut(decomposed, 1) == ""
    assert gsm.cut(decomposed, 2) == decomposed[:2]
    assert gsm.cut("Ángel", 1) == "Á"
    for budget in (1, 2, 3):
        for extra in range(3):
            cut = gsm.fit("x" * extra + unicodedata.normalize("NFD", "Á" * 300), budget)
            assert cut.endswith("...") and not cut[:-3].endswith("A")
            assert gsm.count(cut).segments <= budget
