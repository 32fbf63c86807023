"""Page furniture (cookie walls, paywalls, bot checks) is removed; news sentences stay."""

from __future__ import annotations

import bisect
import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import Document, cluster, kernels, pagenoise
from dedup.pagenoise import is_page_boilerplate, strip_page_boilerplate

COOKIE_EN = (
    "We use cookies to improve your experience on our website. By continuing to browse you consent to our use "
    "of cookies and to the processing of personal data by our partners. Read our privacy policy for details."
)
COOKIE_DE = (
    "Um die Funktion unserer Website zu verbessern und relevante Werbung anzuzeigen, sammeln wir Informationen. "
    "Für Details siehe Datenschutzerklärung. Indem Sie auf Akzeptieren klicken, stimmen Sie der Verarbeitung "
    "Ihrer persönlichen Daten zu."
)
PAYWALL = (
    "TAKE A FREE TRIAL Registered users can read up to 3 reports. Enter your details below for immediate access. "
    "Note our system only accepts work email addresses. The password must be at least 8 characters long."
)
BOT_PL = 'Przykro nam, ale z adresu IP zauważyliśmy ogromną liczbę połączeń. Wybierz "Nie jestem robotem".'

STORY_A = (
    "Police in Lyon arrested three men on Tuesday after a jewellery shop was robbed at gunpoint. "
    "The suspects, aged 19 to 24, were caught on the motorway near Valence, prosecutors said. "
    "Stolen watches worth about 400,000 euros were found in the car, according to the prosecutor's office."
)
STORY_B = (
    "Heavy rain flooded parts of southern Spain on Wednesday, cutting power to 20,000 homes in Malaga. "
    "Emergency services rescued dozens of drivers trapped on flooded roads, the regional government said. "
    "Forecasters expect more storms until the weekend."
)


def test_consent_paywall_and_bot_pages_are_removed() -> None:
    for furniture in (COOKIE_EN, COOKIE_DE, PAYWALL, BOT_PL):
        assert strip_page_boilerplate(furniture).strip() == ""
        kept = strip_page_boilerplate(furniture + "\n\n" + STORY_A)
        assert STORY_A in kept and "cookie" not in kept.lower() and "password" not in kept.lower()


def test_news_sentences_with_such_words_are_kept() -> None:
    for sentence in (
        "Subscribers rose 12 pct to 3.4 million, the company said.",
        "The trial of the former minister opened in Paris on Monday.",
        "Regulators said the new privacy rules take effect in May.",
        "Shares of the advertising group fell 4 pct.",
    ):
        assert not is_page_boilerplate(sentence)
        assert strip_page_boilerplate(STORY_A + " " + sentence) == STORY_A + " " + sentence


def test_different_articles_behind_the_same_cookie_wall_are_not_copies() -> None:
    docs = [
        Document(id="a", text=COOKIE_EN + "\n\n" + STORY_A),
        Document(id="b", text=COOKIE_EN + "\n\n" + STORY_B),
        Document(id="p1", text=PAYWALL),
        Document(id="p2", text=PAYWALL.replace("3 reports", "5 reports")),
    ]
    result = cluster(docs)
    assert len(result.clusters) == 4


@given(st.text(max_size=300))
def test_only_whole_sentences_are_removed(text: str) -> None:
    kept = strip_page_boilerplate(text)
    assert kept == "" or all(part in text for part in kept.split("\n"))


# ----------------------------------------------------------------------------- the fast paths agree with the plain regexes
WORDS = ["cookies", "Cookie-Dateien", "e-mail", "E mail", "email addresses", "sign-in", "signed up", "log in", "opt-out",
         "ip-address", "IP address", "free-trial", "free trial", "non-users", "users", "USERS", "Privacy", "privacy.",
         "accepted", "acceptable", "données personnelles", "Persönlichen Daten", "przeglądarki", "przegladarki", "çerez",
         "ÇEREZLER", "¿cookies?", "£cookie", "«privacy»", "d'accepter", "web site", "website", "web-site", "ad blocker",
         "adblocker", "ad-blocker", "password", "Passwort", "JavaScript", "captcha", "details", "trial", "ÉCOOKIE", "µ", "ß",
         "İ", "K", "ſ", "consentement", "consent", "subscribe", "unsubscribe", "newsletter", "reg\u00edstrese", "registrieren"]
SEPARATORS = [" ", "  ", "\n", "\n\n", ". ", "! ", "? ", "...", "-", "/", ",", "(", ")", "_", "1", "é", "\u00a0", "\u2014", ""]
page_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SEPARATORS), st.text(max_size=8)), max_size=30).map("".join),
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=20).map(lambda ws: "".join(map("".join, ws))),
)
BOUNDARY = re.compile(r"(?<=[.!?])(?=[^.!?])|(?<=\n)")


@settings(max_examples=600, deadline=None)
@given(page_texts)
def test_quick_scan_finds_what_the_full_scan_finds(text: str) -> None:
    """Both quick scans (the skeleton regex; the compiled scan of literal prefixes) lead to _ANY_RE's matches."""
    full = [(m.span(), m.group()) for m in pagenoise._ANY_RE.finditer(text.lower())]
    scans = [pagenoise._quick_matches_regex(text)]
    if kernels.available():
        scans.append(pagenoise._quick_matches(text))
    for quick in scans:
        assert quick is None or [((start, start + len(word)), word) for start, word in quick] == full
        if all(ord(ch) < 256 for ch in text):
            assert quick is not None


SKELETON_WORDS = [w.replace("-", " ") for w in pagenoise._branches(pagenoise._STRONG.lower() + "|" + pagenoise._WEAK.lower())]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SKELETON_WORDS).flatmap(lambda w: st.tuples(st.just(w), st.from_regex(w, fullmatch=True))))
def test_literal_prefixes_start_every_match_of_a_skeleton_word(case: tuple[str, str]) -> None:
    """Whatever a skeleton word matches starts with one of its literal prefixes (so the compiled quick scan,
    which looks for those prefixes, misses no place the skeleton regex would try); each has 2+ characters."""
    word, matched = case
    prefixes = pagenoise._literal_prefixes(word)
    assert all(len(p) >= 2 for p in prefixes)
    assert any(matched.startswith(p) for p in prefixes), (word, matched, prefixes)


def test_literal_prefixes_expand_optional_characters_and_classes() -> None:
    assert sorted(pagenoise._literal_prefixes("e ?mail addresse?s?"))[:2] == ["e mail address", "e mail addresse"]
    assert sorted(pagenoise._literal_prefixes("reg[ií]str\\w+")) == ["registr", "regístr"]
    assert pagenoise._literal_prefixes("sign(?:ed)? ?(?:in|up)") == ["sign"]
    assert pagenoise._literal_prefixes("users?") == ["users", "user"]


@settings(max_examples=600, deadline=None)
@given(page_texts)
def test_sentence_cuts_and_scores(text: str) -> None:
    sentences = BOUNDARY.split(text)
    assert pagenoise._sentences(text) == sentences
    strong, weak = pagenoise._hits(text)
    if strong or weak:
        ends = list(itertools.accumulate(map(len, sentences)))
        scores = [0] * len(sentences)
        words: list[set[str]] = [set() for _ in sentences]
        for pos in strong:
            scores[bisect.bisect_right(ends, pos)] += 2
        for pos, word in weak:
            words[bisect.bisect_right(ends, pos)].add(word)
        assert pagenoise._top_score(text, strong, weak) == max(s + len(w) for s, w in zip(scores, words))


def _grow_blocks_plainly(scores: list[int], blank: list[bool]) -> list[bool]:
    """The block growth as first written: each sentence looks for its neighbours with words anew."""
    drop = [score >= 2 for score in scores]
    changed = True
    while changed:
        changed = False
        for i, score in enumerate(scores):
            if drop[i] or blank[i]:
                continue
            before = next((drop[j] for j in range(i - 1, -1, -1) if not blank[j]), False)
            after = next((drop[j] for j in range(i + 1, len(scores)) if not blank[j]), False)
            if (score >= 1 and (before or after)) or (before and after):
                drop[i] = changed = True
    return drop


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=30))
def test_blocks_grow_as_the_plain_loop_grows_them(sentences: list[tuple[int, bool]]) -> None:
    scores, blank = [s for s, _ in sentences], [b for _, b in sentences]
    assert pagenoise._grow_blocks(scores, blank) == _grow_blocks_plainly(scores, blank)
