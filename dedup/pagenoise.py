"""Remove web-page boilerplate (cookie walls, paywalls, sign-up forms, bot checks) in many languages."""

from __future__ import annotations

import bisect
import functools
import itertools
import re

from dedup import kernels

# Words that, two in one sentence, mark a consent/paywall/bot-check sentence rather than news.
# Stems cover inflections; languages: en, de, fr, es, it, pl, tr, ru, ar, pt, nl.
_WEAK = (
    r"privacy|consent|advertis\w*|subscri\w+|sign(?:ed)? ?(?:in|up)|log ?in|browser|e-?mail addresse?s?"
    r"|accept\w*|personal (?:data|information)|trial|details|unsubscribe|opt[- ]out"
    r"|akzeptier\w*|verarbeitung|persönlichen (?:daten|informationen)|zustimmung"
    r"|zaakceptuj\w*|przetwarzani\w+|dan\w+ osobow\w+|accepte[rz]?|données personnelles|acepta\w*|datos personales"
    r"|accett\w+|dati personali|kabul|onay\w*|принять|персональн\w+ данн\w+"
    r"|personali[sz]\w*|newsletter|terms of (?:use|service)|data processing|website|web ?site|users?"
    r"|webseite|nutzer\w*|witryn\w+|użytkownik\w*|sitio web|usuarios?|site web|utilisateurs?|sito web|utenti"
    r"|datenschutz\w*|einwilligung|werbung|anmelden|registrier\w*|abonn\w+"
    r"|confidentialit\w+|consentement|publicit\w+|connecte\w*|navigateur|inscri\w+"
    r"|privacidad|consentimiento|publicidad|suscri\w+|contraseña|navegador|reg[ií]str\w+"
    r"|consenso|pubblicit\w+|abbonat\w+"
    r"|prywatno\w+|reklam\w+|zaloguj\w*|subskrypc\w+|przegl[aą]dark\w+"
    r"|gizlilik|abone|tarayıcı|kişisel veri\w*"
    r"|конфиденциальн\w+|реклам\w+|подписк\w+|согласи\w+|браузер\w*|регистрац\w+"
    r"|الخصوصية|اشترك|الإعلانات|المتصفح"
)
# One of these alone is enough: they (almost) never occur in news prose.
_STRONG = (
    r"cookies?|cookie-?dateien|plik\w* cookie|çerez\w*|captcha|javascript|ad ?blocker"
    r"|free trial|password|passwort|hasło|mot de passe|şifre|парол\w+"
    r"|not a robot|kein roboter|nie jestem robotem|je ne suis pas un robot|no soy un robot"
    r"|ip[- ]address|adres\w* ip|ip-adresse|adresse ip|dirección ip|ملفات تعريف الارتباط"
    r"|all rights reserved|alle rechte vorbehalten|tous droits réservés|todos los derechos reservados"
)


def _branches(pattern: str) -> list[str]:
    """The top-level alternatives of a regex alternation."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        if ch == "(" and pattern[i - 1 : i] != "\\":
            depth += 1
        elif ch == ")" and pattern[i - 1 : i] != "\\":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
    out.append(pattern[start:])
    return out


def _by_first_letter(pattern: str) -> str:
    """The same alternation grouped by first letter (``a(?:x|y)|b(?:z)``), so that the regex engine
    tries only the few alternatives that can match at a word start instead of all of them."""
    groups: dict[str, list[str]] = {}
    for branch in _branches(pattern):
        groups.setdefault(branch[0].lower(), []).append(branch[1:])
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items())


_WEAK_RE = re.compile(rf"(?<!\w)(?:{_by_first_letter(_WEAK)})(?!\w)", re.IGNORECASE)
_STRONG_RE = re.compile(rf"(?<!\w)(?:{_by_first_letter(_STRONG)})(?!\w)", re.IGNORECASE)
# Both sets in one scan of lower-cased text (strong alternatives first, so "free trial" wins over "trial").
_ANY_RE = re.compile(rf"(?<!\w)(?:{_by_first_letter(_STRONG.lower() + '|' + _WEAK.lower())})(?!\w)")
_STRONG_FULL = re.compile(rf"(?:{_STRONG.lower()})")
# What lets _quick_matches try a place on its line alone: the words have no construct that matches a newline (only
# literal letters and spaces, hyphens, \w, classes of letters; no ".", \s, \W, \S or negated class).
_LINE_BOUND = not re.search(r"\\[sWSDdb]|(?<!\\)\.|\[\^|\n", _STRONG + _WEAK)
assert _LINE_BOUND, "a word of _ANY_RE may match a newline: _quick_matches must try places on the whole text"


def _hits(text: str) -> tuple[list[int], list[tuple[int, str]]]:
    """Positions of strong hits and (position, word) of weak hits, in one scan when lower-casing keeps positions."""
    matches = _quick_matches(text)
    if matches is None:
        low = text.lower()
        if len(low) != len(text):  # a few characters change length when lower-cased: scan the original twice
            return ([m.start() for m in _STRONG_RE.finditer(text)],
                    [(m.start(), m.group().lower()) for m in _WEAK_RE.finditer(text)])
        matches = ((m.start(), m.group()) for m in _ANY_RE.finditer(low))
    strong, weak = [], []
    for start, word in matches:
        if _STRONG_FULL.fullmatch(word):
            strong.append(start)
        else:
            weak.append((start, word))
    return strong, weak


# The quick scan. In the skeleton of a Latin-1 text (every non-word character a space) a word starts after a space, so
# the scan looks for a literal " " (which the regex engine finds fast) instead of trying a lookbehind at every position.
# It matches wherever _ANY_RE does and perhaps elsewhere ("-" in the words is a space there too): each of its matches is
# a place for _ANY_RE to try. Its words form a trie; the letters that start most words in news text begin branches of
# their own, the others wait behind one lookahead, so that most word starts meet only a few branches.
_SKELETON = bytes(ord(chr(c).lower()) if re.match(r"\w", chr(c)) else ord(" ") for c in range(256))  # lower-cased too
assert all(len(chr(c).lower()) == 1 and _SKELETON[ord(chr(c).lower())] == _SKELETON[c] for c in range(256)), \
    "lower-casing must keep the positions and the word characters of Latin-1 text"
_COMMON_INITIALS = "tsacipob"


def _trie(branches: list[str]) -> str:
    """The alternation of ``branches`` with shared leading letters factored out ("c(?:o(?:okies?|nsent)|aptcha)")."""
    rests: dict[str, list[str]] = {}                              # a leading letter, or a branch that starts otherwise
    for branch in branches:
        if branch[:1].isalnum() and branch[1:2] not in ("?", "*", "+", "{"):
            rests.setdefault(branch[0], []).append(branch[1:])
        else:
            rests[branch] = []
    return "|".join(key + (f"(?:{_trie(tails)})" if len(tails) > 1 else "".join(tails)) for key, tails in rests.items())


def _skeleton_words(pattern: str) -> str:
    """The alternation of _ANY_RE's words for the skeleton (without the words that start beyond Latin-1)."""
    assert not re.sub(r"\\w|\(\?:|[()|?*+\[\]\w -]", "", pattern), "only letters, spaces and hyphens are literals"
    assert not re.search(r"\[[^\]]+-", pattern), "a character range would not survive the hyphen replacement"
    words = [branch.replace("-", " ") for branch in _branches(pattern) if ord(branch[0]) < 256]
    common = [word for word in words if word[0] in _COMMON_INITIALS]
    rare = [word for word in words if word[0] not in _COMMON_INITIALS]
    return f"{_trie(common)}|(?=[{''.join(sorted({word[0] for word in rare}))}])(?:{_trie(rare)})"


_SKELETON_RE = re.compile(rf" (?:{_skeleton_words(_STRONG.lower() + '|' + _WEAK.lower())})(?!\w)")


def latin1(text: str) -> bytes | None:
    """``text`` encoded as Latin-1, or None when it has characters beyond Latin-1."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _literal_prefixes(word: str) -> list[str]:
    """Literal strings one of which starts every string the skeleton word ``word`` (a regex) matches: optional
    characters ("s?") and classes of single characters ("[ií]") are expanded, and each variant ends before
    the first other construct (a group, an escape, a repeat)."""
    out: list[str] = []

    def walk(i: int, acc: str) -> None:
        if i == len(word) or word[i] in "(\\.|*+{":
            out.append(acc)
            return
        if word[i] == "[":
            close = word.index("]", i + 1)
            after = word[close + 1 : close + 2]
            if after in ("*", "+", "{"):
                out.append(acc)
                return
            for ch in dict.fromkeys(word[i + 1 : close]):
                walk(close + 1 + (after == "?"), acc + ch)
            if after == "?":
                walk(close + 2, acc)
            return
        after = word[i + 1 : i + 2]
        if after == "?":
            walk(i + 2, acc + word[i])
            walk(i + 2, acc)
        elif after in ("*", "+", "{"):
            out.append(acc)
        else:
            walk(i + 1, acc + word[i])

    walk(0, "")
    return out


@functools.lru_cache(maxsize=1)
def _prefix_table() -> kernels.PrefixTable:
    """The compiled quick scan's table: the first (up to 8) bytes of the literal prefixes of the skeleton's words
    (those in Latin-1: the others cannot occur in a Latin-1 text)."""
    words = [branch.replace("-", " ") for branch in _branches(_STRONG.lower() + "|" + _WEAK.lower())]
    prefixes = set()
    for word in words:
        for prefix in filter(None, map(latin1, _literal_prefixes(word))):
            prefixes.add(prefix[:8])
    assert all(len(p) >= 2 for p in prefixes), "every word needs a literal prefix of two characters"
    return kernels.prefix_table(sorted(prefixes))


def _quick_matches(text: str) -> list[tuple[int, str]] | None:
    """(position, word) of the matches of _ANY_RE in ``text.lower()`` (as finditer gives them), tried only where
    the quick scan of the skeleton of ``text`` matches; None for text beyond Latin-1.

    When the compiled kernels are in use, the quick scan is a compiled pass that finds the word starts of the
    skeleton whose first bytes are one of its words' literal prefixes (a superset of where the skeleton regex
    matches: the extra places are tried by _ANY_RE and fail). Each place is tried on its line lower-cased (from
    the character before it, for the lookbehind), not the whole text: no word of _ANY_RE holds or looks at a
    newline, so a try never reads past one (_LINE_BOUND)."""
    if not kernels.loaded():
        return _quick_matches_regex(text)
    data = latin1(text)
    if data is None:
        return None
    skeleton = b" " + data.translate(_SKELETON)
    out = []
    end = 0
    for start in kernels.prefixed_words(skeleton, _prefix_table()).tolist():  # a word starts at ``start`` in ``text``
        if start < end:
            continue
        first = max(0, start - 1)
        stop = text.find("\n", start)
        m = _ANY_RE.match(text[first : len(text) if stop < 0 else stop].lower(), start - first)
        if m is not None:
            out.append((start, m.group()))
            end = first + m.end()
    return out


def _quick_matches_regex(text: str) -> list[tuple[int, str]] | None:
    """:func:`_quick_matches` with the skeleton regex as the quick scan."""
    data = latin1(text)
    if data is None:
        return None
    skeleton = " " + data.translate(_SKELETON).decode("latin-1")
    out = []
    low = ""
    quick = _SKELETON_RE.search(skeleton)
    while quick is not None:                                      # a word starts at quick.start() in ``text``
        low = low or text.lower()
        m = _ANY_RE.match(low, quick.start())
        if m is not None:
            out.append((m.start(), m.group()))
        quick = _SKELETON_RE.search(skeleton, quick.start() + 1 if m is None else m.end())
    return out


# Sentence boundaries: after . ! ? (also in run-together page text, whatever the case, so that a
# second pass over case-folded output splits the same way), and after newlines. (The character before each
# boundary: a lookbehind would be tried at every position.)
_BOUNDARY_END = re.compile(r"[.!?](?=[^.!?])|\n")


def _sentences(text: str) -> list[str]:
    """``text`` cut at every sentence boundary (the pieces join to ``text``; after a final newline an empty one)."""
    cuts = [m.end() for m in _BOUNDARY_END.finditer(text)]
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)])]


def _sentence_start(text: str, pos: int) -> int:
    """Where the sentence holding the word at ``pos`` starts: after the last newline or . ! ? before it."""
    return max(text.rfind(mark, 0, pos) for mark in "\n.!?") + 1


def _top_score(text: str, strong: list[int], weak: list[tuple[int, str]]) -> int:
    """The highest score (see _score) of a sentence of ``text``, from the hits."""
    scores: dict[int, int] = {}
    for pos in strong:
        start = _sentence_start(text, pos)
        scores[start] = scores.get(start, 0) + 2
    words: dict[int, set[str]] = {}
    for pos, word in weak:
        words.setdefault(_sentence_start(text, pos), set()).add(word)
    return max(scores.get(start, 0) + len(words.get(start, ())) for start in scores.keys() | words.keys())


def _score(sentence: str) -> int:
    """2 per strong hit plus 1 per distinct weak word (a repeated word counts once)."""
    weak = {w.lower() for w in _WEAK_RE.findall(sentence)}
    return 2 * len(_STRONG_RE.findall(sentence)) + len(weak)


def is_page_boilerplate(sentence: str) -> bool:
    """Whether a sentence on its own is web-page furniture (consent, paywall, sign-up, bot check) rather than news."""
    return _score(sentence) >= 2


def _grow_blocks(scores: list[int], blank: list[bool]) -> list[bool]:
    """Which sentences to drop, given their scores and which are blank: those scoring 2+, then, until nothing
    changes, each other sentence with words whose nearest sentence with words before or after is dropped and
    that scores 1, or whose nearest ones on both sides are dropped (in order: a sentence dropped counts for
    the next at once)."""
    drop = [score >= 2 for score in scores]
    solid = [i for i, b in enumerate(blank) if not b]  # (the neighbours that count)
    changed = True
    while changed:
        changed = False
        for k, i in enumerate(solid):
            if drop[i]:
                continue
            before = k > 0 and drop[solid[k - 1]]
            after = k + 1 < len(solid) and drop[solid[k + 1]]
            if (scores[i] >= 1 and (before or after)) or (before and after):
                drop[i] = changed = True
    return drop


def strip_page_boilerplate(text: str) -> str:
    """``text`` without its page-boilerplate blocks; everything else is kept exactly as it was.

    A block grows from sentences that are boilerplate on their own to the
    adjacent sentences with at least one boilerplate word, and to single
    sentences between two boilerplate sentences. A page that was mostly
    such blocks and keeps fewer than 20 words becomes empty.
    """
    strong, weak = _hits(text)
    if (not strong and len(weak) < 2) or _top_score(text, strong, weak) < 2:
        return text
    sentences = _sentences(text)
    ends = list(itertools.accumulate(len(x) for x in sentences))
    hits: list[set[str]] = [set() for _ in sentences]
    scores = [0] * len(sentences)
    for pos in strong:
        scores[bisect.bisect_right(ends, pos)] += 2
    for pos, word in weak:
        hits[bisect.bisect_right(ends, pos)].add(word)
    scores = [score + len(words) for score, words in zip(scores, hits)]
    if not any(score >= 2 for score in scores):
        return text
    drop = _grow_blocks(scores, [not s.strip() for s in sentences])
    kept = "".join(s for s, d in zip(sentences, drop) if not d or "\n" in s and not s.strip(" \t.!?"))
    # A page that was mostly furniture and keeps only a scrap has no article.
    if len(kept.split()) < 20 and len(kept) < len(text) / 4:
        return ""
    return kept
