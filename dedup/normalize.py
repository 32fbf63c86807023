"""Normalise news text: Unicode, case, punctuation, and syndication boilerplate that differs between copies."""

from __future__ import annotations

import functools
import html
import re
import unicodedata

import numpy as np

from dedup import kernels
from dedup.pagenoise import latin1, strip_page_boilerplate

__all__ = ["normalize", "normalize_counting_datelines", "strip_boilerplate"]

# ----------------------------------------------------------------------------- characters
_CHAR_MAP: dict[str, str] = {}
for _chars, _to in (
    ("‘’‚‛′‵ʹʻʼʽ`´‹›＇", "'"),
    ("“”„‟″‶«»〝〞〟＂", '"'),
    ("‐‑‒–—―−⁃﹘﹣－", "-"),
    ("\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "),
    ("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", "\n"),
    ("\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e" + "".join(map(chr, [*range(9), *range(14, 28), 31, *range(127, 133), *range(134, 160)])), ""),
):
    _CHAR_MAP.update(dict.fromkeys(_chars, _to))
_CHAR_RE = re.compile("[" + re.escape("".join(_CHAR_MAP)) + "]")

# Applied after NFKC (which already maps full-width and mathematical digits): the digits of other scripts become ASCII
# (Unicode 14's Nd blocks, each ten contiguous code points from its zero); Arabic harakat, Quranic marks and tatweel,
# and Hebrew niqqud/cantillation marks are dropped (outlets vowel a few words or stretch letters); Russian ё is
# printed е by most outlets; U+0307 is what casefold leaves of Turkish "İ" ("i" + dot above would split the token).
_DIGIT_ZEROS = (0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
                0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50,
                0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136,
                0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50,
                0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1E140, 0x1E2F0, 0x1E950)
_FOLD: dict[int, str | None] = {zero + d: str(d) for zero in _DIGIT_ZEROS for d in range(10)}
_FOLD.update(dict.fromkeys([*range(0x064B, 0x0660), 0x0670, 0x0640, *range(0x06D6, 0x06DD), *range(0x06DF, 0x06E9),
                            *range(0x06EA, 0x06EE), *range(0x0591, 0x05BE), 0x05BF, 0x05C1, 0x05C2, 0x05C4, 0x05C5, 0x05C7,
                            0x0307]))
_FOLD.update({ord("ё"): "е", ord("Ё"): "Е"})
# (A class of the BMP code points is a fast bitmap; one with astral code points is a slow list, so any astral character,
# emoji included, sends the text through the translate.)
_FOLD_RE = re.compile("[" + "".join(f"\\u{c:04x}" for c in _FOLD if c < 0x10000) + "\U00010000-\U0010ffff]")
# Digit groups separated by a no-break, figure, thin or narrow no-break space ("1 180 000" in French, Polish, Russian).
_GAPS = "\u00a0\u2007\u2009\u202f"
_GROUP_GAP = re.compile(rf"\d[{_GAPS}]\d")
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:[\u00a0\u2007\u2009\u202f]\d{3})+(?!\d)")
# Digit groups separated by dots: only with two or more dots ("1.200.000"; a decimal has one, a date has 2-digit groups).
_DOTTED = re.compile(r"(?<![\d.,])\d{1,3}(?:\.\d{3}){2,}(?!\d|\.\d)")
_DOTTED_HINT = re.compile(r"\.\d{3}\.\d{3}")


# Most text is Latin-1, and in it a few regex scans over the whole text can be skipped: the code points of a Latin-1 text
# other than plain ASCII are found by one fast bytes.translate (_rare), and none of them is in _FOLD.
_CHAR_CODES = frozenset(map(ord, _CHAR_MAP))
_PLAIN = bytes(c for c in (*range(0x20, 0x7F), ord("\n")) if c not in _CHAR_CODES)   # printable ASCII but "`", and "\n"
assert min(_FOLD) > 0xFF


def _rare(text: str) -> frozenset[int] | None:
    """The code points of ``text`` not in _PLAIN; None when some are beyond Latin-1."""
    data = latin1(text)
    return None if data is None else frozenset(data.translate(None, _PLAIN))


def _unify(text: str, rare: frozenset[int] | None) -> str:
    """``text`` with the characters of _CHAR_MAP replaced; ``rare`` holds (at least) its rare code points, see _rare."""
    if rare is not None and rare.isdisjoint(_CHAR_CODES):
        return text
    return _CHAR_RE.sub(_char_sub, text)


def _fold(text: str) -> str:
    """``text`` with native digits in ASCII and without the marks/variants in _FOLD."""
    return text.translate(_FOLD) if _FOLD_RE.search(text) else text


def _join_groups(m: re.Match[str]) -> str:
    """A digit-grouped number without its group separators."""
    return "".join(m.group().split())


def _join_dotted(m: re.Match[str]) -> str:
    """A dot-grouped number without its dots."""
    return m.group().replace(".", "")


def _char_sub(m: re.Match[str]) -> str:
    """The replacement of one character matched by _CHAR_RE."""
    return _CHAR_MAP[m.group()]


_HTML_TAG = re.compile(r"</?(?:p|br|div|span|a|li|ul|ol|h[1-6]|strong|em|b|i|u|img|figure|figcaption|blockquote|table|tr|td|th"
                       r"|section|article|header|footer|aside|nav|script|style|iframe|small|sup|sub)\b[^<>]{0,500}?/?>", re.I)
_HTML_HINT = re.compile(r"</(?:p|div|span|a|li|ul|ol|h[1-6]|strong|em|b|i|u|td|tr|th|table|figure|figcaption|blockquote|section|"
                        r"article|header|footer|aside|nav|script|style|iframe|small|sup|sub)\s*>|<br\s*/?>"
                        r"|<(?:p|div|span|a|img|br)\s+[a-z-]+\s*=", re.I)
_HTML_PARA = re.compile(r"</?(?:p|div|h[1-6]|blockquote|table|section|article|figure|header|footer)\b[^<>]{0,500}?>", re.I)
_HTML_BR = re.compile(r"<(?:br\b[^<>]*|/li|/tr)>", re.I)
_HTML_DROP = re.compile(r"<(script|style)\b[^<>]*>.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_GAP = re.compile(r"\s+")

# ----------------------------------------------------------------------------- vocabulary
_AGENCIES = ("Reuters Reuter REUTERS REUTER AP AFP Bloomberg DPA ANI PTI IANS UPI Xinhua XINHUA Kyodo EFE ANSA Yonhap TASS Interfax "
             "Anadolu Bernama Antara AAP PA CNA WAM KUNA IRNA APP NNA UNI APA ANP Belga Lusa PAP Jiji Sputnik WAFA QNA MENA CNN Agencies").split()
_AGENCY = "(?:" + "|".join(_AGENCIES + ["Associated Press", "Agence France[- ]Presse", "Press Association"]) + ")"
_AGENCY_ANY = rf"(?:{_AGENCY}|dpa|apa|sda|afp|ap|kna|epd|ots|reuters)(?:\s*/\s*(?:{_AGENCY}|dpa|apa|sda|afp|ap|kna|epd|ots|reuters))*"
_MONTHS = ("january february march april may june july august september october november december jan feb mar apr jun jul aug sep "
           "sept oct nov dec janvier février mars avril mai juin juillet août septembre octobre novembre décembre enero febrero marzo "
           "abril mayo junio julio agosto septiembre octubre noviembre diciembre januar februar märz juni juli oktober dezember jänner "
           "janv févr avr juil déc gennaio febbraio marzo aprile maggio giugno luglio settembre ottobre dicembre janeiro "
           "fevereiro março maio junho julho setembro outubro novembro dezembro stycznia lutego marca kwietnia maja czerwca "
           "lipca sierpnia września października listopada grudnia styczeń luty marzec kwiecień maj czerwiec lipiec sierpień "
           "wrzesień październik listopad grudzień ocak şubat mart nisan mayıs haziran temmuz ağustos eylül ekim kasım aralık "
           "января февраля марта апреля мая июня июля августа сентября октября ноября декабря январь февраль март апрель май "
           "июнь июль август сентябрь октябрь ноябрь декабрь يناير فبراير مارس أبريل ابريل مايو يونيو يوليو أغسطس اغسطس "
           "سبتمبر أكتوبر اكتوبر نوفمبر ديسمبر شباط آذار نيسان أيار حزيران تموز آب أيلول ม.ค. ก.พ. มี.ค. เม.ย. พ.ค. มิ.ย. "
           "ก.ค. ส.ค. ก.ย. ต.ค. พ.ย. ธ.ค. มกราคม กุมภาพันธ์ มีนาคม เมษายน พฤษภาคม มิถุนายน กรกฎาคม สิงหาคม กันยายน "
           "ตุลาคม พฤศจิกายน ธันวาคม").split() + ["كانون الثاني", "كانون الأول", "تشرين الأول", "تشرين الثاني"]
_WEEKDAYS = ("monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun lundi mardi "
             "mercredi jeudi vendredi samedi dimanche lunes martes miércoles jueves viernes sábado domingo segunda terça quarta quinta "
             "sexta montag dienstag mittwoch donnerstag freitag samstag sonntag lunedì martedì mercoledì giovedì venerdì sabato "
             "domenica senin selasa rabu kamis jumat sabtu minggu pazartesi salı çarşamba perşembe cuma cumartesi pazar "
             "poniedziałek wtorek środa czwartek piątek sobota niedziela понедельник вторник среда четверг пятница суббота "
             "воскресенье الاثنين الإثنين الثلاثاء الأربعاء الاربعاء الخميس الجمعة السبت الأحد الاحد").split()
_LABELS = ("updated update published posted modified created released issued filed uploaded date dated time on at le el am um de "
           "del du à uhr last first aktualisiert veröffentlicht erstellt stand publié modifié actualisé actualizado publicado "
           "actualización hora aggiornato pubblicato aggiornamento il ore alle zaktualizowano aktualizacja opublikowano "
           "publikacja dodano godz o güncelleme güncellenme yayınlanma tarihi saat обновлено опубликовано в г года мск "
           "تحديث نشر بتاريخ الساعة في 更新 发布 發布 发表 發表 配信 公開 更新时间 发布时间 發布時間 更新日時 配信日時 时间 時間 "
           "อัปเดต อัพเดต อัพเดท เวลา น.").split() + [
    "mis à jour", "a las", "última actualización", "ultimo aggiornamento", "data publikacji", "son güncelleme",
    "güncellenme tarihi", "yayınlanma tarihi", "yayın tarihi", "дата публикации", "آخر تحديث", "تاريخ النشر", "نشر في"]
_STAFF = "staff writer writers desk reporter reporters correspondent correspondents bureau agencies services service reports".split()
_SOCIAL = ("share this article story page post on via facebook twitter x linkedin email e-mail whatsapp telegram reddit pinterest "
           "print tweet f t in copy link messenger flipboard comment comments save").split()
_UI = ("advertisement story continue scroll media read more latest end ends xxx source sources credit courtesy trending most "
       "recommended related top you don't dont editor's popular skip sign log loading print email comment comments leave previous "
       "next").split()


def _alt(words: list[str]) -> str:
    """A regex alternation of literal words, longest first, grouped by first letter ("j(?:anuary|une)|f(?:ebruary)"):
    the regex engine then tries only the words of the letter at hand (with IGNORECASE it cannot skip them fast)."""
    groups: dict[str, list[str]] = {}
    for word in sorted(map(re.escape, words), key=len, reverse=True):
        assert word[0].isalnum(), word
        groups.setdefault(word[0], []).append(word[1:])
    # Two first letters that IGNORECASE takes for one (like "s" and "ſ") would split one group in two.
    same_letter = {first: re.compile(first, re.I).fullmatch for first in groups}
    assert not any(same_letter[a](b) for a in groups for b in groups if a != b)
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


_MONTH = rf"(?i:(?:{_alt(_MONTHS)})\.?)"
_TZ = (r"(?:gmt|utc|et|est|edt|ct|cst|cdt|mt|mst|mdt|pt|pst|pdt|bst|cet|cest|eet|eest|ist|jst|kst|hkt|sgt|aest|aedt|wib|ict|msk|sast"
       r"|wat|eat|gst|pkt|z)(?:\s*[+-]\s*\d{1,2}(?::?\d{2})?)?")
_TOKEN = (rf"(?:(?:{_alt(_WEEKDAYS)})(?:day|-feira)?\.?|thứ (?:hai|ba|tư|năm|sáu|bảy|[2-7])|chủ nhật|cn|{_MONTH}|jum'at"
          rf"|(?:last |first )?(?:{_alt(_LABELS)})|just now|yesterday|today|(?:\d+|an?|one) (?:second|sec|minute|min|hour|hr|day"
          rf"|week|month)s? ago|\d{{4}}-\d\d-\d\dt\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:z|[+-]\d\d:?\d\d)?|(?<![\d.])\d{{1,4}}(?P<s1>[./-])"
          rf"\d{{1,2}}(?P=s1)\d{{1,4}}(?![\d.])|\d{{1,2}}[:h]\d\d(?::\d\d)?|\d{{1,2}}\.\d\d(?= ?(?:{_TZ}|[ap]\.?m\b|uhr|h\b))"
          rf"|[ap]\.?m\.?|{_TZ}|\d+ min(?:ute)?s? read|\d{{1,4}}(?:st|nd|rd|th|\.)?"
          rf"|(?:\d{{2,4}}年)?\d{{1,2}}月\d{{1,2}}日(?:\s*[(（](?:[月火水木金土日]|(?:星期|周)[一二三四五六日天])[)）])?|\d{{1,2}}時\d\d分"
          rf"|(?:来源|來源)[:：]\s*[^\s:：]{{1,20}})")
_DATE_LINE = re.compile(rf"[\W_]*(?:{_TOKEN}(?:[\s,.|/·•:()\[\]-]+|$))+", re.I)
_DATE_SIGNAL = re.compile(rf"\d{{1,2}}[:h]\d\d|\d月\d{{1,2}}日|min(?:ute)?s? read|\d([./-])\d{{1,2}}\1\d|\bago\b|\b{_MONTH}[\s,]*\d|\d[\s.]*{_MONTH}\b", re.I)
_DECIMAL = re.compile(r"\d\.\d+(?![\d.])")
_DIGIT = re.compile(r"\d")
_DATE_WORD = re.compile(rf"\d([./-])\d{{1,2}}\1\d|\b{_MONTH}\b")
_DATE_END = re.compile(rf"(?:{_MONTH}\s*\d{{1,2}},?\s*\d{{4}}|\d{{1,2}}\s*{_MONTH}\s*\d{{4}})\.$")

_NAME = r"[A-Z][\w'’.-]*"
_PERSON = rf"{_NAME}(?:\s+(?:{_NAME}|van|von|de|da|del|der|la|le|al|bin|el|di|du|dos|ter)){{1,3}}"
_PEOPLE = rf"{_PERSON}(?:\s*(?:,|and|&)\s*{_PERSON}){{0,3}}"
_PLACE = r"[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|del|da|do|la|el|al|es|on|upon|am))*"
_SEP = r"\s*(?:,|\||-|–|—|/)\s*"
# Bylines in other languages: names start with a capital of any Latin, Greek or Cyrillic letter.
_UPPER = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x530)) if c.isupper())
_UNAME = rf"[{_UPPER}][\w'’.-]*"
_UPERSON = rf"{_UNAME}(?:\s+(?:{_UNAME}|van|von|de|da|del|der|la|le|al|bin|el|di|du|dos|ter|y)){{1,3}}"
_UPEOPLE = rf"{_UPERSON}(?:\s*(?:,|and|&|und|et|y|e|i|и|ve)\s*{_UPERSON}){{0,3}}"
_ARABIC_WORDS = r"[\u0621-\u064a\u0671-\u06d3]+(?:\s+[\u0621-\u064a\u0671-\u06d3]+){0,3}"
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"

# ----------------------------------------------------------------------------- line rules
# A rule only fires on a line it could match (cheap first/last-word checks); every literal is either (?i:...) or needs a capital,
# so a line that survives normalize() once can never match later: normalize is idempotent. (Literals in scripts without
# case, Arabic, Han, kana and Thai, are the same before and after casefold.)
_SHORT = re.compile("|".join((
    rf"(?:Von|Par|Por|Di|di|Autor(?:ka)?:|Autorzy:|Haber:|Muhabir:|Автор:|Авторы:|Текст:)\s+{_UPEOPLE}"
    rf"(?:{_SEP}{_AGENCY_ANY})?",                                                       # Von Sabine Huber, dpa / Автор: Иван Петров
    rf"(?:(?:كتب|كتبت|إعداد|تقرير)\s*:|بقلم\s*:?)\s*{_ARABIC_WORDS}",                    # كتب: محمد العتيبي
    rf"(?:本报|本報|新华社|新華社)?(?:记者|記者)[\s:：]+{_HAN}{{2,4}}(?:[\s、,，]+{_HAN}{{2,4}}){{0,3}}",  # 记者 陈静
    r"(?:来源|來源|出典)[:：]\s*[^\s:：]{1,20}",                                          # 来源：南国早报
    r"【[^【】\s]{0,12}(?:支局|総局|支社|通信部|報道部|編集部|記者)(?:\s*[^【】\s]{1,10})?】",     # 【上越支局 佐藤美咲】
    r"โดย\s+(?:ทีมข่าว|กองบรรณาธิการ|ผู้สื่อข่าว)\S{0,30}",                                 # โดย ทีมข่าวภูมิภาค
    rf"By:?\s+(?:{_PEOPLE}|(?i:our (?:correspondents?|reporters?|staff|bureau))|{_AGENCY}(?i: staff)?|Staff(?: [A-Z]\w+)?)"
    rf"(?:{_SEP}(?:{_AGENCY}|[A-Z][\w&.'-]*(?:\s+(?:[A-Z][\w&.'-]*|of|for|and|in))*))?",   # By John Smith, Reuters
    rf"{_PERSON}{_SEP}{_AGENCY}",                                                       # John Smith | AFP
    r"(?:From |By )?(?!An? )(?:(?:(?i:our|the)|[A-Z][\w&.'-]*)\s+){0,3}(?i:(?:staff(?: writers?| reporters?| correspondents?)?|writers?"
    r"|desk|reporters?|correspondents?|bureau|wire (?:services?|reports?)|news service|agencies)"
    r"(?:\s+(?:and|&|with)\s+(?:agencies|wire (?:services?|reports?)))?)",               # Staff Writer / Reuters Staff
    rf"[-–—(\s]*(?:{_AGENCY}|(?i:reuters?))[)\s]*(?:\.\.\.)?",                         # Reuters / -- AFP / (AFP) / REUTER...
    rf"{_AGENCY}{_SEP}{_PLACE}(?:\s*(?:,|and|&|/)\s*{_PLACE})*",                       # Reuters, BAGHDAD and TIKRIT, Iraq
    rf"{_PLACE}(?:,\s*{_PLACE})*\s*\({_AGENCY}\)\s*[-–—:]*",                            # WASHINGTON (Reuters) -
    r"(?:More|Read more|Latest|More stories|More news) (?:from|on|at) [A-Z][\w.&' -]{0,40}",
    r"(?:[-=#*]{1,3}\s*)?(?i:ends?|\(end\)|-30-|###|xxx)",
    r"(?i:(?:https?://)?(?:www\.)?[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|co\.uk|co|info|news|in|au|uk|de|fr|vn)(?:/\S*)?)",
    r"(?i:advertisement|story continues below(?: advertisement)?|continue reading(?: the main story)?|read (?:the )?full (?:story"
    r"|article)|scroll (?:down )?to continue(?: reading)?|media playback is unsupported on your device|(?:sources?|credit|courtesy)"
    r"\s*:.{1,80}|trending(?: now| stories)?|most (?:popular|read|viewed|shared)|recommended(?: stories| for you)?|related (?:stories"
    r"|articles|coverage|content|topics|news|links)|top stories|latest (?:news|stories|videos)|more stories|you (?:may|might) also like"
    r"|don'?t miss|editor'?s picks|popular now|skip to (?:main )?content|sign in|log in|loading\.*|\d* ?comments?|leave a comment"
    r"|(?:previous|next) (?:post|article|story))",
    rf"(?i:(?:\W*\b(?:{_alt(_SOCIAL)})\b)*?\W*\b(?:share|tweet|facebook|twitter|linkedin|whatsapp|e-?mail|print|pinterest|reddit|telegram|messenger|flipboard)\b(?:\W*\b(?:{_alt(_SOCIAL)})\b)*[^\w.]*)",
)))
_SHORT_FIRST = frozenset(_AGENCIES + "By By: More Read Latest Associated Agence Press Von Par Por Di di Autor Autorka Autorzy Haber "
                                     "Muhabir Автор Авторы Текст كتب كتبت إعداد تقرير بقلم โดย".split())
_SHORT_FIRST_LOW = frozenset(_UI + ["reuter", "reuters", "http", "https", "www"])
_SHORT_LAST = frozenset(_AGENCIES + ["Press", "Presse", "Association"])
_SHORT_LAST_LOW = frozenset(_STAFF + ["reuter", "reuters"])
_SOCIAL_WORDS = frozenset(_SOCIAL)
_DATE_FIRST = frozenset([w.split()[0] for w in _MONTHS + _WEEKDAYS + _LABELS] + "thứ chủ cn jum'at just yesterday today an a one".split())
# How lines in scripts written without spaces start when a rule might apply (their first "word" can be the whole line).
_UNSPACED_HEAD = re.compile(r"相关|相關|延伸|関連|本报|本報|新华社|新華社|记者|記者|来源|來源|出典|更新|发布|發布|配信|公開|【|อ่าน")
_PUNCT = "()[]{}.,;:!?'\"-|/*#=•·<>«»"
# Footer lines (<= 40 words) recognised by how they start.
_REPORTING_FIRST = frozenset("reporting additional further writing editing edited written compiled research production graphics".split())
_FOOTER_FIRST = _REPORTING_FIRST | frozenset(
    "read related you recommended also see more tags topics filed keywords most trending top copyright copr c all click subscribe "
    "sign follow like photo photos image images picture pictures pic pics foto video graphic illustration caption this except "
    "photograph translated translation to contact write our file archive media watch listen mehr lesen weiterlesen das lire à "
    "voir leer lee te noticias leggi potrebbe czytaj zobacz ilgili bunu читайте смотрите اقرأ إقرأ اقرا ذات".split())
_FOOTER = re.compile(
    r"\(?\s*(?:(?:read more|related|you (?:might|may) also like|recommended|also read|see also|more on this(?: story| topic)?|tags|topics"
    r"|filed under|keywords|most read|trending|top stories|more stories)\b[\w ]{0,20}?\s*[:|»>]"
    r"|(?:copyright|copr\.)\s*(?:©|\(c\))?\s*(?:\d{4}|©)|©|\(c\)\s*\d{4}|all rights reserved|click (?:here|to|for)\b"
    r"|(?:subscribe|sign[ -]up)\b.{0,80}\b(?:newsletters?|alerts?|updates|free|today|now|here|inbox)\b|(?:follow|like) us on\b"
    r"|(?:(?:file|archive) )?(?:photo|image|picture|pic|photograph|foto|video|graphic|illustration|caption|watch|listen)s?"
    r"(?: credit| caption| copyright| source)?\s*[:|]"
    r"(?=(?:\S*\s+){0,24}\S*$)"
    r"|(?:image|media) (?:copyright|caption|source)\b|to contact the (?:reporters?|editors?|writers?|authors?)|contact (?:the )?"
    r"(?:writer|reporter|author|editor)s?\b|write to\b.{0,80}@|our standards\b|copyright\s+(?-i:(?:The )?%s)\b|" % _AGENCY +
    r"(?:\(?except for the headline, )?this (?:story|article|report) (?:has not been edited|was"
    r" (?:originally )?(?:published|produced|first published)|originally (?:appeared|published))"
    r"|(?:mehr zum thema|lesen sie (?:auch|mehr|hier)|weiterlesen|das könnte sie auch interessieren|(?:à )?lire (?:aussi|également"
    r"|la suite)|(?:à )?voir aussi|leer más|lee (?:también|más)|te puede interesar|noticias relacionadas|leggi (?:anche|tutto)"
    r"|potrebbe interessarti|(?:czytaj|zobacz) (?:też|także|również|więcej)|ilgili haber(?:ler)?|bunu da okuyun"
    r"|читайте (?:также|еще|тоже)|смотрите также|[اإ]قر[أا] (?:أيضا|ايضا|المزيد)|ذات صلة"
    r"|(?:相关|相關)(?:新闻|新聞|阅读|閱讀|报道|報導|文章)|延伸(?:阅读|閱讀)|関連(?:記事|ニュース)"
    r"|อ่าน(?:ข่าว)?(?:ที่เกี่ยวข้อง|เพิ่มเติม))\s*[:：|»>])", re.I)
_REPORTING = re.compile(
    r"(?i:\(\s*(?:additional |further )?(?:reporting|writing|editing|compiled|research|translat\w+|edited|written|production"
    rf"|graphics)\b[^()]*?\bby\b[^()]*?(?:\)\.?|$))|(?:(?:Additional |Further )?(?:[Rr]eporting|[Ww]riting|[Ee]diting|"
    rf"[Ee]dited|[Ww]ritten|[Cc]ompiled) by {_PEOPLE}(?: in {_PLACE})?(?:\s*[;,]\s*|\.?$))+")
_CREDIT = (rf"(?:{_AGENCY}|EPA(?:-EFE)?|Getty(?: Images)?|GETTY(?: IMAGES)?|POOL|Pool|ANADOLU|SIPA|NurPhoto|ZUMA|Shutterstock|Handout|"
           rf"AFP PHOTO|AP Photo)(?:/(?:{_NAME}(?: {_NAME}){{0,3}}|File Photo|FILE PHOTO|Pool|POOL|File|FILE|via \w+))+")
_CREDIT_END = re.compile(
    rf"(?:^|\s|\()(?:{_CREDIT}|{_PERSON}\s*/\s*(?:{_AGENCY}|Getty Images|EPA)|\((?:AP|AFP|Reuters|EPA|File) (?i:photo)\b[^()]{{0,80}}\)"
    r"|(?i:\((?:file )?photo(?: by)?\s*[:/]?[^()]{1,60}\)))\s*\)?\.?$")
# What _CREDIT_END needs: the text after its last "/" starts with a capital or "via " ("/File Photo", "/ AFP"), or a ")"
# followed only by spaces, ")" and "." ends the line.
_CREDIT_HINT = re.compile(r"/\s*(?:[A-Z]|via )[^/]*$|\)[\s).]*$")
_TAIL_HINT = re.compile(r"syndicated feed|contributed (?:to this (?:report|story|article)|reporting)")
_CONTACT = re.compile(r"(?:[^@]{0,30}:\s*|(?:\S+\s+){0,4})[\w.+-]+@[\w-]+\.[\w.]+|@\w+(?:\s+\S+){0,3}")
_CREDIT_CUT = re.compile(r"/[A-Z][\w'’-]*$")
_CREDIT_TAIL = re.compile(rf"{_NAME}(?: {_NAME})?(?:/[\w ]{{1,20}})*")
_TERMINAL = tuple('.!?:;")]\'')

# ----------------------------------------------------------------------------- datelines and mastheads
# A strong dateline is one of two forms, each tried only on lines that start like it (see _strong_dateline).
_DATELINE_PAREN = re.compile(
    rf"(?:[A-Z][^\s()]*(?:[ ,]+[^\s()]+){{0,6}}?\s*\({_AGENCY_ANY}\)|\({_AGENCY}(?:/{_AGENCY})*\))\s*(?:[-–—:]+\s*|(?=[A-Z\"]))")
_DATELINE_MONTH = re.compile(
    rf"[A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+)*(?:,\s*[A-Z][\w.]*)*,\s*{_MONTH}\s*\d{{1,2}}(?:,\s*\d{{4}})?\s*[-–—]+\s*")
_CAPITALS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CAPITALS_ETC = _CAPITALS | frozenset(".'’-")
_CAPITALS_PAREN = _CAPITALS | frozenset("(")
_DATELINE_WEAK = re.compile(r"[A-Z]{2}[A-Z'’-]*(?:\s+[A-Z][A-Z.'’-]+){0,3}(?:,\s*[A-Z][\w.]+(?:\s+[A-Z][\w.]+)?)?\s*(?:[-–—]{1,2}|:)\s+"
                            r"|[A-Z][a-z]{2,}(?:-[A-Z][a-z]+)*\s+[-–—]{1,2}\s+")
_MASTHEAD_WORDS = ("times post herald gazette tribune journal news daily chronicle observer courier review report ledger digest "
                   "network online today telegraph guardian independent express mirror standard mail insider wire monitor record "
                   "register bulletin dispatch inquirer examiner sentinel weekly magazine watch hub press star globe nation voice "
                   "leader line international").split()
_MASTHEAD = re.compile(rf"(?=[A-Z])(?:The\s+)?(?:[A-Z][\w&'.-]*\s+){{0,3}}(?:[A-Z][\w&'.-]*?)?(?i:{_alt(_MASTHEAD_WORDS)})"
                       r"(?:\s+(?:\d+|[A-Z]{2,4}))?")                # (only ever fullmatched: the word order is free)


def _line_rule(s: str) -> int:
    """0 = story text; 1 = boilerplate line; 2 = footer line (a wrapped tail may follow); 3 = photo credit."""
    words = s.count(" ") + 1
    if words <= 60 and ("/" in s[-70:] or s.endswith((")", ")."))) and _credit_end(s):
        return 3
    first, _, rest = s.partition(" ")
    first = first.strip(_PUNCT)
    low = first.lower()
    head = False
    if not low.isascii():
        low = low.replace("\u0307", "")                           # "İlgili".lower() == "i̇lgili"
        head = _UNSPACED_HEAD.match(s) is not None
    if words <= 16 and len(s) <= 160:
        if words <= 12:
            last = rest.rpartition(" ")[2].strip(_PUNCT)
            if (first in _SHORT_FIRST or low in _SHORT_FIRST_LOW or last in _SHORT_LAST or last.lower() in _SHORT_LAST_LOW
                    or words == 1 or head or (low in _SOCIAL_WORDS and last.lower() in _SOCIAL_WORDS)
                    or s.rstrip(" -–—:").endswith(")")) and _SHORT.fullmatch(s):
                return 1
        if (low in _DATE_FIRST or first[:1].isdigit() or head) and (not s.endswith(".") or s.endswith((".m.", " น.", " г.")))\
                and _may_signal_date(s) and _DATE_LINE.fullmatch(s) and _DATE_SIGNAL.search(s) \
                and len(_DATE_WORD.findall(s)) < 3 and len(_DECIMAL.findall(s)) < 2:
            return 1
    if low in _FOOTER_FIRST or low[:1] == "©" or head:
        if words <= 40 and _FOOTER.match(s):
            return 2
        if low in _REPORTING_FIRST and _REPORTING.fullmatch(s):
            return 2
    if words <= 40 and _tail_hint(s):
        return 2
    return 1 if words <= 12 and "@" in s and _CONTACT.fullmatch(s) else 0


def _may_signal_date(s: str) -> bool:
    """Whether the line has what _DATE_SIGNAL needs: a digit, or "ago" or "read" (letters IGNORECASE matches in ASCII only)."""
    if _DIGIT.search(s):
        return True
    low = s.lower()
    return "ago" in low or "read" in low


def _credit_end(s: str) -> bool:
    """Whether the line ends with a photo credit (_CREDIT_END, tried only after a "/ Name" or a ")" near its end)."""
    start = max(0, len(s) - 160)
    return _CREDIT_HINT.search(s, start) is not None and _CREDIT_END.search(s, start) is not None


def _tail_hint(s: str) -> bool:
    """Whether the line says it comes from a syndicated feed or names contributors (_TAIL_HINT, checked for its words first)."""
    low = s.lower()
    return ("syndicated feed" in low or "contributed " in low) and _TAIL_HINT.search(low) is not None


def _strong_dateline(s: str) -> re.Match[str] | None:
    """The strong dateline the line starts with: "PARIS (AFP) -" or "(AFP)", tried only when its first "(" follows at
    most seven words (the regex takes no more; a lone "," is no word), else "LONDON, June 18 -", tried only when the
    line starts with two capitals and has a ","."""
    m = None
    paren = s.find("(")
    if paren >= 0 and s[:1] in _CAPITALS_PAREN and sum(1 for word in s[:paren].split() if word.strip(",")) <= 7:
        m = _DATELINE_PAREN.match(s)
    if m is None and s[:1] in _CAPITALS and s[1:2] in _CAPITALS_ETC and "," in s:
        m = _DATELINE_MONTH.match(s)
    return m


def _strip_dateline(s: str) -> str | None:
    """The line without its dateline prefix, or None when it has none."""
    m = (_strong_dateline(s) if "(" in s[:90] or s[:2].isupper() else None) or (
        _DATELINE_WEAK.match(s) if s[:1].isupper() else None)
    if m is None:
        return None
    rest = s[m.end():]
    if not rest or (m.re is _DATELINE_WEAK and (not (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"'")
                                                or (not m.group().isupper() and rest.count(" ") < 7))):
        return None
    return rest


def _screen(text: str, *, own_views: bool = False) -> list[int] | None:
    """With the kernels in use, the lines of ``text`` a line rule may apply to, each as 2 * its index, plus 1 when
    the line may not be its own view (see _view and kernels.screen_lines; ``own_views``: every line is); None
    without the kernels."""
    if not kernels.loaded():
        return None
    return kernels.screen_lines(text.encode("utf-8", "surrogatepass"), _screen_table(), own_views=own_views)


@functools.lru_cache(maxsize=1)
def _screen_table() -> kernels.ScreenTable:
    """What _screen passes the kernel: the ASCII characters of _PUNCT, and the ASCII words that may start or end
    a line a rule applies to, by key (lower-cased: a superset of the case-sensitive sets), with what they may be."""
    punct = np.zeros(256, dtype=np.bool_)
    punct[[ord(c) for c in _PUNCT if c.isascii()]] = True
    found: dict[int, int] = {}
    for words, bit in ((_SHORT_FIRST | _SHORT_FIRST_LOW | _SOCIAL_WORDS, kernels.SCREEN_SHORT_FIRST),
                       (_DATE_FIRST, kernels.SCREEN_DATE_FIRST), (_FOOTER_FIRST, kernels.SCREEN_FOOTER_FIRST),
                       (_SHORT_LAST | _SHORT_LAST_LOW, kernels.SCREEN_SHORT_LAST)):
        for word in words:
            if word.isascii():
                key = kernels.word_key(word.encode("ascii"))
                found[key] = found.get(key, 0) | bit
    keys = np.array(sorted(found), dtype=np.uint64)
    return kernels.screen_table(punct, keys, np.array([found[k] for k in keys.tolist()], dtype=np.uint8))


def count_datelines(text: str) -> int:
    """Paragraphs that open with a news dateline ("LONDON, June 18 -", "PARIS (AFP) -").

    A story has one; a briefing or roundup that compiles several stories has one per story.
    """
    return _count_dateline_lines(text.split("\n"))


def _count_dateline_lines(lines: list[str]) -> int:
    """count_datelines of the text whose lines (split at "\\n") are ``lines``."""
    count = 0
    for s in map(str.lstrip, filter(None, lines)):
        if s[:2].isupper() or "(" in s[:90]:
            m = _strong_dateline(_view(s))
            count += m is not None and m.end() < len(s)
    return count


def _view(line: str) -> str:
    """The line as the rules see it: stripped, and for non-ASCII lines with unified spaces, quotes and dashes."""
    if line.isascii():
        return line.strip()
    rare = _rare(line)
    line = _unify(line, rare)
    return " ".join((line if rare is not None else _fold(line)).split())


def strip_boilerplate(text: str) -> str:
    """Remove syndication boilerplate lines/prefixes, keep story text untouched otherwise."""
    return _strip(text, own_views=False)


def _strip(text: str, *, own_views: bool, lines: list[str] | None = None) -> str:
    """strip_boilerplate; ``own_views``: ``text`` is a _clean output, whose every line is its own view (_view);
    ``lines``: its lines, if split already (the list is changed)."""
    lines = text.split("\n") if lines is None else lines
    n = len(lines)
    screen = _screen(text, own_views=own_views)
    if screen is None:
        s = [_view(ln) if ln else "" for ln in lines]
        ruled: list[int] | range = range(n)
    else:                                                         # (the rules' verdict on the other lines is 0)
        s = lines.copy()
        ruled = [code >> 1 for code in screen]
        for code in screen:
            if code & 1:
                s[code >> 1] = _view(lines[code >> 1])
    kind = [0] * n
    keep = [True] * n
    marked: list[int] = []
    for i in ruled:
        if s[i] and (k := _line_rule(s[i])):
            kind[i] = k
            keep[i] = False
            marked.append(i)
    for i in [i for i in marked if kind[i] >= 2]:
        if kind[i] == 3:                                          # a caption wrapped over several lines
            first, lone = i, _CREDIT_END.match(s[i]) is not None
            while first > max(i - 3, 0) and s[first - 1] and keep[first - 1] and (
                    not s[first][0].isupper()
                    or ((first < i or not lone) and not s[first - 1].endswith(_TERMINAL) and s[first - 1].count(" ") >= 5)
                    or (lone and first == i and s[i - 1].count(" ") < 40 and _DATE_END.search(s[i - 1]))):
                first -= 1
            if first < i and (first == 0 or not s[first - 1] or not keep[first - 1] or s[first - 1].endswith(_TERMINAL)):
                keep[first:i] = [False] * (i - first)
            if i + 1 < n and _CREDIT_CUT.search(s[i]) and _CREDIT_TAIL.fullmatch(s[i + 1]):
                keep[i + 1] = False                                # "... REUTERS/Pedro" / "Mensah"
        elif kind[i] == 2 and s[i].startswith("(") and ")" not in s[i]:  # "(Reporting by X; Editing by" / "Y Z)"
            for j in range(i + 1, min(i + 4, n)):
                if not s[j] or "(" in s[j]:
                    break
                if s[j].endswith((")", ").")):
                    keep[i + 1:j + 1] = [False] * (j - i)
                    break
        elif kind[i] == 2 and not s[i].endswith(_TERMINAL) and i + 1 < n and s[i + 1] and s[i + 1].endswith((".", ")")) and (
                (s[i + 1][0].islower() and s[i + 1].count(" ") < 8) or s[i + 1].count(" ") < 2):
            keep[i + 1] = False                                    # "... published from" / "a syndicated feed."
    seen = 0
    changed = False  # (a dateline cut off)
    for i in range(n):                                            # header zone: mastheads and the dateline
        if not keep[i] or not s[i]:
            continue
        seen += 1
        long_line = s[i].count(" ") >= 12
        if seen <= 3 and s[i].count(" ") < 6 and s[i][0].isupper() and (
                i + 1 == n or not s[i + 1] or not keep[i + 1] or s[i + 1].endswith(_TERMINAL)) and _MASTHEAD.fullmatch(s[i]):
            keep[i] = False
            continue
        rest = _strip_dateline(s[i])
        if rest is not None:
            cut = len(lines[i].rstrip()) - len(rest) if lines[i].rstrip().endswith(rest) else next(
                (m.end() for m in _GAP.finditer(lines[i]) if _view(lines[i][m.end():]) == rest), None)
            if cut is not None:
                lines[i] = lines[i][cut:]
                keep[i] = _line_rule(rest) == 0
                changed = True
            break
        if long_line or seen >= 5:
            break
    for i in [i for i in marked if kind[i] == 1 and i]:           # "... will be paid on" / "April 12." is a wrapped sentence
        if not keep[i] and s[i].endswith(".") and keep[i - 1] and s[i - 1].count(" ") >= 5 \
                and not s[i - 1].endswith(_TERMINAL):
            keep[i] = True
    if screen is not None and lines[0] and lines[-1] and all(keep) and "\n\n\n" not in text and all(
            s[code >> 1] for code in screen if code & 1 and lines[code >> 1]):
        return "\n".join(lines) if changed else text              # (what the loop below gives: no line dropped)
    out: list[str] = []
    for line, view, kept in zip(lines, s, keep):
        if kept and (view or (out and out[-1].strip())):
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


# ----------------------------------------------------------------------------- normalize
def _strip_tags(text: str) -> str:
    """Turn HTML markup into plain lines; only known tag names are touched (keeps "<EFH>"-style tickers)."""
    text = _HTML_DROP.sub(" ", text)
    while True:
        new = _HTML_TAG.sub(" ", _HTML_BR.sub("\n", _HTML_PARA.sub("\n\n", text)))
        if new == text:
            return text
        text = new


def _clean(text: str, *, spaced: bool = False) -> str:
    """NFKC, unify quotes/dashes/spaces/line ends, collapse whitespace (no per-character Python work). ``spaced``: the
    text is a _clean result (case-folded perhaps), its whitespace already collapsed unless another step changes it."""
    given = text
    rare = _rare(text)                                            # (each step below keeps it a superset)
    if not text.isascii():
        if any(gap in text for gap in _GAPS) and _GROUP_GAP.search(text):
            text = _GROUPED.sub(_join_groups, text)
        unified = _unify(text, rare)
        text = unicodedata.normalize("NFKC", unified)
        if rare is None or text != unified:                      # (quotes and dashes were often all it had beyond Latin-1)
            rare = _rare(text)
        if rare is None:
            text = _fold(text)
    if rare is None or ord("\r") in rare:
        text = text.replace("\r\n", "\n")
    text = _unify(text, rare)
    if _DOTTED_HINT.search(text):
        text = _DOTTED.sub(_join_dotted, text)
    return given if spaced and text == given else _collapse(text)


def _collapse(text: str) -> str:
    """Runs of spaces as one, no space next to a newline, at most one blank line, no space or newline at either end.

    With the kernels in use, a Latin-1 text is first checked in one compiled pass: most need nothing but the
    strip (CPython's searches below stop at every space: ~20 us on 4 KB)."""
    data = latin1(text) if kernels.loaded() else None  # (beyond Latin-1: the searches below)
    if data is not None and not kernels.has_gaps(data):
        return text.strip(" \n")
    while "  " in text:
        text = text.replace("    ", " ").replace("  ", " ")
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip(" \n")


def _markup(text: str) -> str:
    """Drop HTML tags when the text looks like HTML, and unescape entities, until neither changes anything ("&amp;quot;")."""
    while True:
        if "<" in text and _HTML_HINT.search(text):
            text = _strip_tags(text)
        new = html.unescape(text) if "&" in text else text
        if new == text:
            return text
        text = new


def normalize(text: str, *, strip_boilerplate: bool = True) -> str:
    """Text ready for tokenisation: boilerplate lines and page furniture (cookie walls, paywalls; see
    :mod:`dedup.pagenoise`) removed (when asked), HTML entities unescaped, NFKC, case-folded,
    quotes/apostrophes/dashes unified, whitespace collapsed (keep paragraph breaks as "\\n")."""
    return _normalize(text, strip_boilerplate=strip_boilerplate, count=False)[0]


def normalize_counting_datelines(text: str, *, strip_boilerplate: bool = True) -> tuple[str, int]:
    """(:func:`normalize` (text), :func:`count_datelines` (text)), with ``text`` split into lines once where cleaning
    leaves it as it was (most text: then its lines are those boilerplate is stripped from)."""
    return _normalize(text, strip_boilerplate=strip_boilerplate, count=True)


def _normalize(text: str, *, strip_boilerplate: bool, count: bool) -> tuple[str, int]:
    """normalize, and (``count``) count_datelines (else -1)."""
    out = text
    datelines = -1
    for _ in range(4):
        cur = cleaned = _clean(_markup(out))
        lines = None
        if count and datelines < 0:  # (the first pass: ``out`` is ``text``)
            if cleaned == text:
                lines = cleaned.split("\n")
                datelines = _count_dateline_lines(lines)
            else:
                datelines = count_datelines(text)
        paged = False
        if strip_boilerplate:
            cur = _strip(cur, own_views=True, lines=lines)  # (a _clean output: every line its own view)
            page = strip_page_boilerplate(cur)
            if page != cur:                                       # it can leave a space or blank lines at a cut
                cur = cleaned = _clean(page)
                paged = True                                      # (a line it shortened may now be a footer)
        cur, settled = _fold_case(cur, spaced=(cur == cleaned))
        if (settled and not paged and _markup(cur) == cur) or cur == out:
            return cur, datelines
        out = cur                                                 # rare: casefold/NFKC made new entities, tags or capitals
    return out, datelines


# Case folding within Latin-1 is a byte-for-byte lower-casing but for "µ" (folded to Greek "μ") and "ß" (to "ss").
_LATIN1_LOWER = bytes(ord(chr(c).lower()) for c in range(256))


def _fold_case(text: str, *, spaced: bool) -> tuple[str, bool]:
    """_settle_case(text.casefold()): for ASCII and Latin-1 text without "µ" by lower-casing its bytes (``str.casefold``
    looks up every character: ~13 us on 4 KB of Latin-1 against ~3 us)."""
    if text.isascii():
        return text.lower(), True
    data = latin1(text)
    if data is None or b"\xb5" in data:
        return _settle_case(text.casefold(), spaced=spaced)
    folded = data.translate(_LATIN1_LOWER).decode("latin-1")
    if b"\xdf" in data:
        folded = folded.replace("ß", "ss")
    if spaced or folded.isascii():  # (what _settle_case gives in Latin-1)
        return folded, True
    return _settle_case_fully(folded, spaced=False)


def _settle_case(text: str, *, spaced: bool) -> tuple[str, bool]:
    """Case-folded ``text`` cleaned again (and case-folded and cleaned once more when that changes it), and whether
    the result is settled: ASCII, or left unchanged by both casefold and _clean. ``spaced`` as for _clean (casefold
    neither makes nor removes spaces and newlines)."""
    if text.isascii():
        return text, True
    if spaced and latin1(text) is not None:
        # The case-folded output of _clean within Latin-1: _clean's steps act only on characters that NFKC and
        # unifying replaced already and case folding never makes, and folding is idempotent there: settled
        # (what _settle_case_fully finds, ~25 us of passes over the text; tests/test_normalize.py).
        return text, True
    return _settle_case_fully(text, spaced=spaced)


def _settle_case_fully(text: str, *, spaced: bool) -> tuple[str, bool]:
    """_settle_case by cleaning and case-folding again."""
    cleaned = _clean(text, spaced=spaced)
    folded = cleaned.casefold()
    if folded != cleaned:
        cleaned = _clean(folded, spaced=True)
        return cleaned, cleaned.isascii() or (cleaned.casefold() == cleaned and _clean(cleaned, spaced=True) == cleaned)
    return cleaned, cleaned.isascii() or cleaned == text or _clean(cleaned, spaced=True) == cleaned  # (_clean(text) is cleaned)

