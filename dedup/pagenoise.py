"""Remove web-page boilerplate (cookie walls, paywalls, sign-up forms, bot checks) in many languages."""

from __future__ import annotations

import bisect
import itertools
import re

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


def _hits(text: str) -> tuple[list[int], list[tuple[int, str]]]:
    """Positions of strong hits and (position, word) of weak hits, in one scan when lower-casing keeps positions."""
    low = text.lower()
    if len(low) != len(text):  # a few characters change length when lower-cased: scan the original twice
        return ([m.start() for m in _STRONG_RE.finditer(text)],
                [(m.start(), m.group().lower()) for m in _WEAK_RE.finditer(text)])
    strong, weak = [], []
    for m in _ANY_RE.finditer(low):
        if _STRONG_FULL.fullmatch(m.group()):
            strong.append(m.start())
        else:
            weak.append((m.start(), m.group()))
    return strong, weak


# Sentence boundaries: after . ! ? (also in run-together page text, whatever the case, so that a
# second pass over case-folded output splits the same way), and after newlines.
_BOUNDARY = re.compile(r"(?<=[.!?])(?=[^.!?])|(?<=\n)")


def _score(sentence: str) -> int:
    """2 per strong hit plus 1 per distinct weak word (a repeated word counts once)."""
    weak = {w.lower() for w in _WEAK_RE.findall(sentence)}
    return 2 * len(_STRONG_RE.findall(sentence)) + len(weak)


def is_page_boilerplate(sentence: str) -> bool:
    """Whether a sentence on its own is web-page furniture (consent, paywall, sign-up, bot check) rather than news."""
    return _score(sentence) >= 2


def strip_page_boilerplate(text: str) -> str:
    """``text`` without its page-boilerplate blocks; everything else is kept exactly as it was.

    A block grows from sentences that are boilerplate on their own to the
    adjacent sentences with at least one boilerplate word, and to single
    sentences between two boilerplate sentences. A page that was mostly
    such blocks and keeps fewer than 20 words becomes empty.
    """
    strong, weak = _hits(text)
    if not strong and len(weak) < 2:
        return text
    sentences = _BOUNDARY.split(text)
    ends = list(itertools.accumulate(len(x) for x in sentences))
    hits: list[set[str]] = [set() for _ in sentences]
    scores = [0] * len(sentences)
    for pos in strong:
        scores[bisect.bisect_right(ends, pos)] += 2
    for pos, word in weak:
        hits[bisect.bisect_right(ends, pos)].add(word)
    scores = [score + len(words) for score, words in zip(scores, hits)]
    drop = [score >= 2 for score in scores]
    if not any(drop):
        return text
    changed = True
    while changed:
        changed = False
        for i, score in enumerate(scores):
            if drop[i] or not sentences[i].strip():
                continue
            before = next((drop[j] for j in range(i - 1, -1, -1) if sentences[j].strip()), False)
            after = next((drop[j] for j in range(i + 1, len(sentences)) if sentences[j].strip()), False)
            if (score >= 1 and (before or after)) or (before and after):
                drop[i] = changed = True
    kept = "".join(s for s, d in zip(sentences, drop) if not d or "\n" in s and not s.strip(" \t.!?"))
    # A page that was mostly furniture and keeps only a scrap has no article.
    if len(kept.split()) < 20 and len(kept) < len(text) / 4:
        return ""
    return kept
