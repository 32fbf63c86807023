"""Multilingual: the SemEval languages (en, de, es, fr, it, pl, tr, ar, ru) and Chinese, Japanese and Thai
(character bigrams) work out of the box, on hand-written news in each script.

Fixtures (``tests/fixtures/multilingual/``), per language ``xx``:

- ``xx_a.txt``: an original wire-style report (headline, dateline, figures, names, places), 4-6 paragraphs;
- ``xx_copy.txt``: the same story as another outlet republishes it. Blocks, in order: a new headline, the
  outlet's timestamp line, a byline, the story with a paragraph dropped and/or the last one cut and a few
  house-style changes (quote marks, "9 km" vs "9 chilometri", full-width digits, ...), a footer line
  ("Mehr zum Thema: ...", "Lire aussi : ...");
- ``xx_b.txt``: a different story on the same topic and day, written independently (shares topic words).

``mixed_*.txt`` is an English story quoting Chinese names, a Russian place name and (in B) a Korean name.

Tests marked ``xfail(strict=True)`` document product gaps found while writing this file; each reason says
the input, what was expected and what happens.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from dedup import Document, Options, cluster
from dedup.normalize import normalize
from dedup.shingle import shingles
from dedup.tokenize import tokens

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "multilingual"

SEMEVAL = ["en", "de", "es", "fr", "it", "pl", "tr", "ar", "ru"]
UNSPACED = ["zh", "ja", "th"]  # no spaces between words: character bigrams
LANGS = SEMEVAL + UNSPACED
FAMILIES = LANGS + ["mixed"]

# Characters of the scripts that dedup tokenises as character bigrams (Han, kana, Thai), for the checks below.
UNSPACED_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f]+")

SHINGLE_SIZE = Options().shingle_size


# ----------------------------------------------------------------------------- fixtures and helpers
@dataclass(frozen=True)
class Story:
    """One language's three articles (text as stored, paragraphs separated by blank lines)."""

    lang: str
    a: str
    copy: str
    b: str

    def docs(self) -> tuple[Document, Document, Document]:
        return (Document(id=f"{self.lang}-a", text=self.a), Document(id=f"{self.lang}-copy", text=self.copy),
                Document(id=f"{self.lang}-b", text=self.b))

    def truncated(self) -> Document:
        """The first two paragraphs of A's body (no headline): a copy cut short."""
        return Document(id=f"{self.lang}-trunc", text="\n\n".join(blocks(self.a)[1:3]))

    def copy_outlet_lines(self) -> tuple[str, str, str]:
        """The copy's timestamp line, byline and footer line."""
        parts = blocks(self.copy)
        return parts[1], parts[2], parts[-1]

    def copy_without_outlet_lines(self) -> Document:
        """The copy as an outlet that adds no timestamp, byline or footer would publish it."""
        parts = blocks(self.copy)
        return Document(id=f"{self.lang}-copy-bare", text="\n\n".join([parts[0], *parts[3:-1]]))


@cache
def story(lang: str) -> Story:
    def read(part: str) -> str:
        return (FIXTURES / f"{lang}_{part}.txt").read_text(encoding="utf-8")

    return Story(lang=lang, a=read("a"), copy=read("copy"), b=read("b"))


def blocks(text: str) -> list[str]:
    """Paragraphs (blank-line separated blocks), the headline first."""
    return [p.strip() for p in text.strip().split("\n\n") if p.strip()]


def shingle_set(text: str) -> set[str]:
    return set(shingles(tokens(normalize(text)), n=SHINGLE_SIZE))


def jaccard(x: str, y: str) -> float:
    a, b = shingle_set(x), shingle_set(y)
    return len(a & b) / len(a | b)


def numbers(text: str) -> set[str]:
    return {t for t in tokens(normalize(text)) if t.isdigit()}


def assert_copy_pair(result, original: str, copy: str, other: str) -> None:
    """``copy`` is in ``original``'s cluster, named after it; ``other`` is alone."""
    assert result.assignments[original] == original
    assert result.assignments[copy] == original, f"{copy} not clustered with {original}: {result.assignments}"
    assert result.assignments[other] == other, f"{other} wrongly joined: {result.assignments}"
    assert result.cluster_of(other).members == (other,)
    assert any({p.a, p.b} == {original, copy} for p in result.pairs)


# Letters a text in each language must be written in (guards against mojibake or a wrong-language fixture).
SCRIPT = {"ru": "CYRILLIC", "ar": "ARABIC", "zh": "CJK", "th": "THAI"}
LATIN_MARKS = {"en": "", "de": "äöüß", "es": "ñáéíóú", "fr": "éèàçê", "it": "àèéìòù", "pl": "ąćęłńóśźż", "tr": "çğıöşü"}


# ----------------------------------------------------------------------------- the fixtures themselves
@pytest.mark.parametrize("lang", LANGS)
def test_fixture_is_a_realistic_story_family(lang: str) -> None:
    s = story(lang)
    a, copy, b = blocks(s.a), blocks(s.copy), blocks(s.b)
    assert 5 <= len(a) <= 7 and 5 <= len(b) <= 7  # headline + 4-6 paragraphs
    assert copy[0] != a[0]  # a new headline
    assert len(copy) - 4 < len(a) - 1  # headline, timestamp, byline, footer; a paragraph dropped
    assert len(numbers(s.a)) >= 5 and len(numbers(s.b)) >= 3  # figures
    letters = [c for c in s.a if c.isalpha()]
    if lang in SCRIPT:
        share = sum(unicodedata.name(c, "").startswith(SCRIPT[lang]) for c in letters) / len(letters)
        assert share > 0.8
    elif lang == "ja":
        assert any(unicodedata.name(c, "").startswith("HIRAGANA") for c in letters)
        assert sum(unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA")) for c in letters) / len(letters) > 0.8
    else:
        assert all(unicodedata.name(c).startswith("LATIN") for c in letters)
        assert all(m in s.a.lower() or m in s.b.lower() or m in s.copy.lower() for m in LATIN_MARKS[lang][:2])


# ----------------------------------------------------------------------------- clustering, per language
@pytest.mark.parametrize("lang", LANGS)
def test_copy_joins_original_and_other_story_stays_alone(lang: str) -> None:
    a, copy, b = story(lang).docs()
    result = cluster([a, copy, b])
    assert_copy_pair(result, a.id, copy.id, b.id)
    assert len(result.clusters) == 2


@pytest.mark.parametrize("lang", LANGS)
def test_truncated_copy_joins_original(lang: str) -> None:
    s = story(lang)
    a, _, b = s.docs()
    trunc = s.truncated()
    result = cluster([a, trunc, b])
    assert_copy_pair(result, a.id, trunc.id, b.id)


@pytest.mark.parametrize("lang", LANGS)
def test_copy_without_outlet_lines_joins_original(lang: str) -> None:
    """The copy as republished without timestamp, byline and footer (new headline, dropped paragraph, house style)."""
    s = story(lang)
    a, _, b = s.docs()
    bare = s.copy_without_outlet_lines()
    assert_copy_pair(cluster([a, bare, b]), a.id, bare.id, b.id)


@pytest.mark.parametrize("lang", LANGS)
def test_copy_timestamp_byline_and_footer_are_stripped(lang: str) -> None:
    kept = normalize(story(lang).copy).split("\n")
    survivors = [line for line in story(lang).copy_outlet_lines() if normalize(line, strip_boilerplate=False) in kept]
    assert survivors == []


def test_all_languages_in_one_batch() -> None:
    """Every family at once: no story joins one in another language, every copy finds its original."""
    docs: list[Document] = []
    for lang in FAMILIES:
        docs.extend(story(lang).docs())
        docs.append(story(lang).truncated())
    result = cluster(docs)
    for lang in FAMILIES:
        a = f"{lang}-a"
        assert result.cluster_of(a).members == (a, f"{lang}-copy", f"{lang}-trunc"), lang
        assert result.cluster_of(f"{lang}-b").members == (f"{lang}-b",), lang
    assert len(result.clusters) == 2 * len(FAMILIES)


# ----------------------------------------------------------------------------- Chinese, Japanese, Thai: character bigrams
KNOWN_WORDS = {"zh": ("桂林市", ["桂林", "林市"]), "ja": ("上越市", ["上越", "越市"]),
               "th": ("เชียงใหม่", ["เช", "ชี", "ีย", "ยง", "งใ", "ให", "หม", "ม่"])}
FOUR_CHARS = {"zh": "桂林市区", "ja": "上越市内", "th": "น้ำท่วม"}


@pytest.mark.parametrize("lang", UNSPACED)
def test_unspaced_text_is_tokenised_into_character_bigrams(lang: str) -> None:
    text = normalize(story(lang).a)
    unspaced = [t for t in tokens(text) if UNSPACED_RUN.fullmatch(t)]
    assert unspaced and max(map(len, unspaced)) <= 2  # no token longer than a bigram
    assert sum(len(t) == 2 for t in unspaced) > 0.9 * len(unspaced)
    for run in UNSPACED_RUN.findall(text):  # each pure run: its overlapping bigrams, in order
        assert tokens(run) == ([run[i : i + 2] for i in range(len(run) - 1)] or [run])
    word, expected = KNOWN_WORDS[lang]
    assert tokens(normalize(word)) == expected
    # Shingles of 3 tokens are character 4-grams.
    run = normalize(FOUR_CHARS[lang])
    grams = shingles(tokens(run), n=SHINGLE_SIZE)
    assert ["".join(bigram[0] for bigram in g.split(" ")) + g[-1] for g in grams] == [
        run[i : i + SHINGLE_SIZE + 1] for i in range(len(run) - SHINGLE_SIZE)]


@pytest.mark.parametrize("lang", UNSPACED)
def test_unspaced_copy_shares_shingles_and_other_story_does_not(lang: str) -> None:
    s = story(lang)
    copy, other = jaccard(s.a, s.copy), jaccard(s.a, s.b)
    assert copy >= 0.5, copy
    assert other <= 0.15, other
    assert copy >= 4 * other


def test_full_width_digits_and_latin_fold_under_nfkc() -> None:
    """Japanese and Chinese house styles write digits and Latin full width; NFKC unifies them."""
    assert tokens(normalize("２８６毫米")) == tokens(normalize("286毫米")) == ["286", "毫米"]
    assert tokens(normalize("ＪＲ東日本")) == ["jr", "東日", "日本"]
    assert numbers(story("ja").copy) - numbers(story("ja").a) <= {"2017", "10", "18", "8"}  # header, headline


# ----------------------------------------------------------------------------- mixed scripts
def test_mixed_script_article_clusters() -> None:
    """An English report quoting Chinese names and a Russian place name; B quotes a Korean name."""
    a, copy, b = story("mixed").docs()
    result = cluster([a, copy, b])
    assert_copy_pair(result, a.id, copy.id, b.id)
    toks = tokens(normalize(a.text))
    assert {"华信", "信能", "能源", "林浩", "浩然", "宁波"} <= set(toks)  # Han: bigrams, inside English text
    assert "новосибирск" in toks and "novosibirsk" in toks  # Cyrillic: a word, case-folded
    assert "성우에너지" in tokens(normalize(b.text))  # Hangul is spaced: a word
    assert {"debrecen", "hungary", "2026"} <= set(toks)


# ----------------------------------------------------------------------------- Arabic: what normalize does and does not unify
# Words of ar_copy.txt written by an outlet that vocalises a few of them (shadda, damma, kasra inside the word) ...
ARABIC_DIACRITICS = {"جدة": "جدّة", "المكرمة": "المكرّمة", "علقت": "علّقت", "احتجزوا": "احتُجزوا",
                     "المتحدث": "المتحدّث", "الدراسة": "الدِّراسة"}
# ... and by one that stretches a few words with tatweel (kashida), as justified print and headlines do.
ARABIC_TATWEEL = {"جدة": "جـدة", "المكرمة": "المكـرمة", "علقت": "علـقت", "المتحدث": "المتحـدث",
                  "الدراسة": "الدراسـة", "السيول": "السـيول"}


def arabic_copy_variant(words: dict[str, str]) -> str:
    text = story("ar").copy
    for plain, styled in words.items():
        assert plain in text
        text = text.replace(plain, styled)
    return text


def test_arabic_presentation_forms_fold_under_nfkc() -> None:
    # Text extracted from PDFs often carries presentation forms: NFKC maps them to the base letters.
    assert tokens(normalize("ﺟﺪﺓ")) == tokens(normalize("جدة")) == ["جدة"]
    assert tokens(normalize("ﻻ")) == ["لا"]


def test_arabic_final_tanween_does_not_change_tokens() -> None:
    # A diacritic at the end of a word is not a letter, so it ends the token harmlessly.
    assert tokens(normalize("340 بلاغاً و95 شخصاً")) == tokens(normalize("340 بلاغا و95 شخصا"))


def test_arabic_tatweel_is_ignored() -> None:
    assert tokens(normalize("كـتاب")) == tokens(normalize("كتاب"))


def test_arabic_diacritics_do_not_split_words() -> None:
    assert tokens(normalize("علّقت")) == ["علقت"]
    assert tokens(normalize("كِتَاب")) == ["كتاب"]


def test_arabic_copy_with_tatweel_still_clusters() -> None:
    """Six words (10 occurrences) stretched with tatweel: still a copy (cosine 0.58, containment 0.52: a thin
    margin over the 0.55 / 0.5 rule, because each stretched word is a different token)."""
    a, _, b = story("ar").docs()
    styled = Document(id="ar-copy-tatweel", text=arabic_copy_variant(ARABIC_TATWEEL))
    assert_copy_pair(cluster([a, styled, b]), a.id, styled.id, b.id)


def test_arabic_copy_with_diacritics_still_clusters() -> None:
    a, _, b = story("ar").docs()
    styled = Document(id="ar-copy-harakat", text=arabic_copy_variant(ARABIC_DIACRITICS))
    assert_copy_pair(cluster([a, styled, b]), a.id, styled.id, b.id)


# ----------------------------------------------------------------------------- native digits
NATIVE_DIGITS = {"ar": "٠١٢٣٤٥٦٧٨٩", "th": "๐๑๒๓๔๕๖๗๘๙"}  # Arabic-Indic (e.g. Egyptian outlets), Thai


@pytest.mark.parametrize("lang", sorted(NATIVE_DIGITS))
def test_copy_with_native_digits_joins_original(lang: str) -> None:
    s = story(lang)
    a, _, b = s.docs()
    native = Document(id=f"{lang}-copy-native-digits", text=s.copy.translate(str.maketrans("0123456789", NATIVE_DIGITS[lang])))
    assert_copy_pair(cluster([a, native, b]), a.id, native.id, b.id)


# ----------------------------------------------------------------------------- house-style spelling variants
def _gap(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


SPELLING_VARIANTS = [
    pytest.param("Straßen unter Wasser", "Strassen unter Wasser", id="de-eszett-swiss-ss"),
    pytest.param("« Les Montalbanais ont choisi »", '"Les Montalbanais ont choisi"', id="fr-guillemets"),
    pytest.param("„Czterech poszkodowanych” – przekazał", '"Czterech poszkodowanych" - przekazał', id="pl-quotes"),
    pytest.param("«Es una fusión entre iguales»", '"Es una fusión entre iguales"', id="es-comillas"),
    pytest.param("about 3,500 jobs", "about 3500 jobs", id="en-thousands-comma"),
    pytest.param("上越市では３日朝までの２４時間", "上越市では3日朝までの24時間", id="ja-full-width-digits"),
    pytest.param("вагонов с углём", "вагонов с углем", id="ru-yo"),
    pytest.param("RİZE'DE SEL", "Rize'de sel", id="tr-dotted-capital-i"),
    pytest.param("rund 1.200 Anwohner", "rund 1200 Anwohner", id="de-thousands-dot", marks=_gap(
        "Gap / design question: only ',' is removed as a thousands separator ('3,500' == '3500'); German/Spanish/"
        "Italian/Turkish '1.200' gives tokens ['1', '200'] vs ['1200'] (ambiguous with an English decimal).")),
    pytest.param("de 1\u00a0180 voix", "de 1180 voix", id="fr-thousands-space"),
]


@pytest.mark.parametrize(("styled", "plain"), SPELLING_VARIANTS)
def test_house_style_spelling_variant_gives_same_tokens(styled: str, plain: str) -> None:
    assert tokens(normalize(styled)) == tokens(normalize(plain))
