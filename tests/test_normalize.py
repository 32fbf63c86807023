"""Tests for dedup.normalize: character normalisation and syndication-boilerplate stripping."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dedup import normalize as normalize_module
from dedup.normalize import normalize, strip_boilerplate

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
DATA = ROOT.parent / "shared" / "data"

LEAD = ("Gunmen and suicide car bombers on Thursday killed at least 52 people near the southern Iraqi city of Nasiriyah, "
        "in an attack claimed by Islamic State, officials said.")
BODY = [
    "The attackers struck at midday, opening fire on a restaurant before blowing themselves up at a nearby checkpoint.",
    "Abdel Hussein al-Jabri, deputy health chief for Dhiqar province, told Reuters on Monday that many of the wounded were "
    "in serious condition.",
    "The toll makes it the deadliest attack in Iraq since pro-government forces drove the jihadists out of Mosul in July.",
]


def article(header: list[str], footer: list[str], lead: str = LEAD, sep: str = "\n\n") -> str:
    """A realistic article: header lines, the story paragraphs, footer lines."""
    return sep.join([*header, lead, *BODY, *footer])


def assert_story_kept(out: str, lead: str = LEAD) -> None:
    for para in [lead, *BODY]:
        assert normalize(para, strip_boilerplate=False) in out, para


# ----------------------------------------------------------------------------- boilerplate kinds
TIMESTAMPS = [
    "Thứ Ba, 03/01/2017, 10:18", "2017-09-14 19:26", "date 2017-09-14", " date 2017-09-14 \u00a0",
    "Updated: Jan 3, 2017 10:18 AM ET", "Published 14.09.2017 | 19:26", "March 3, 1987, 4:05 PM GMT",
    "Wednesday 1 April 1987 17.26 GMT", "Posted on 09/04/1987", "Published 17\u00a0hours ago", "Updated 43 minutes ago",
    "2017-09-14T19:26:00Z", "Lundi 3 mars 2017, 10h18", "Montag, 3. März 2017, 10:18 Uhr",
    "Last updated: 3 March 2017 at 10:18 GMT", "Mar 3, 1987 7:40 AM ET", "Sept. 14, 2017 / 7:26 PM / Updated 2 hours ago",
]
BYLINES = [
    "By John Smith", "By John Smith, Reuters", "By Jane Doe and Max Roe | AFP", "Staff Writer", "Reuters Staff", "AP", "Reuters",
    "AFP", "Reuters, BAGHDAD and TIKRIT, Iraq", "Reuters, GREELEY, Colo.", "By Staff Reporter", "Staff and agencies",
    "By our correspondent", "Ravi Patel, Reuters", "From our wire services", "By Reuters Staff", "By Maria van der Berg",
    "Business Desk", "WASHINGTON (Reuters)",
]
CAPTIONS = [
    "REUTERS/Ahmed Saad", "(File photo: AP)", "(AP Photo/Hadi Mizban)", "Photo: Reuters", "Image: Getty Images",
    "Picture: Ahmed Saad / AFP", "Photograph: John Smith/Getty Images",
    "People look at a burned vehicle at the site of a car bomb attack in Baghdad's Sadr City district, in Iraq "
    "January 2, 2017. REUTERS/Ahmed Saad",
    "The logo of Guinness Plc is seen at its offices in London, April 3, 1987. REUTERS/Fatima Martin/File Photo",
    "An Iraqi soldier stands guard at a checkpoint in Nasiriyah, Iraq, on Sept. 14, 2017. (AP Photo/Nabil al-Jurani)",
    "Image caption Security forces at the scene of the attack",
    "FILE PHOTO: Iraqi security forces patrol a street in Nasiriyah, Iraq.",
]
FOOTERS = [
    "Read more on:    isis  |  iran  |  iraq", "Related: Iraq says Mosul offensive in final phase",
    "(Reporting by Ahmed Rasheed; Editing by Mark Heinrich)",
    "(Additional reporting by Maher Chmaytelli in Baghdad; Writing by Michael Georgy; Editing by Alison Williams)",
    "Writing by Pedro Jackson; Editing by Olga Saad and Ines Mensah", "Copyright 2017 Reuters. All rights reserved.",
    "© 2017 Thomson Reuters", "All rights reserved. Redistribution prohibited.", "Share this article",
    "Share on Facebook / Twitter", "Share: f t in", "Share this article: Facebook | Twitter | LinkedIn | Email",
    "Follow us on Twitter and Facebook for the latest news", "Click here to read more world stories",
    "Subscribe to our daily newsletter", "Sign up for our free morning briefing newsletter", "Reuter", "REUTER...",
    "Reuters", "-- AFP", "— Reuters", "(AFP)", "More from Reuters", "You might also like: Iraq | Syria | Iran",
    "(Except for the headline, this story has not been edited by NDTV staff and is published from a syndicated feed.)",
    "Copyright 1987 Reuters. Click For Restrictions.", "Advertisement", "www.example-news.com", "Source: Reuters",
    "To contact the reporter on this story: John Smith in London at jsmith@bloomberg.net",
    "The Associated Press contributed to this report.", "Our Standards: The Thomson Reuters Trust Principles.",
    "Print this article", "Trending Now", "E-Mail: pressestelle@polizei.example.de", "3 min read",
]
DATELINES = [
    "BAGHDAD (Reuters) - ", "WASHINGTON, Feb 26 (Reuters) - ", "SALVADOR, Feb 26 - ", "PARIS (AFP) — ", "Nasiriyah - ",
    "NEW YORK, March 3 — ", "RICHMOND, Va., March 5 (Reuters) - ", "HONG KONG - ", "NEW DELHI: ", "(Reuters) - ",
    "RIO DE JANEIRO, Brazil (AP) — ", "(CNN)", "Berlin (dpa) - ", "LONDON, Jan 1 (Reuters) - ",
]


@pytest.mark.parametrize("line", TIMESTAMPS)
def test_timestamp_lines_removed(line: str) -> None:
    text = article(["Iraq attack kills 52", line], [])
    out = normalize(text)
    assert normalize(line, strip_boilerplate=False) not in out.split("\n")
    assert not re.search(r"\d\d:\d\d|2017-09|1987", out)
    assert_story_kept(out)
    assert out.startswith("iraq attack kills 52\n")  # the headline is story text, not boilerplate


@pytest.mark.parametrize("line", BYLINES)
@pytest.mark.parametrize("sep", ["\n\n", "\n"])
def test_byline_lines_removed(line: str, sep: str) -> None:
    out = normalize(article(["Iraq attack kills 52", line], [], sep=sep))
    assert normalize(line, strip_boilerplate=False) not in out.split("\n")
    assert_story_kept(out)


@pytest.mark.parametrize("prefix", DATELINES)
def test_dateline_prefix_removed_sentence_kept(prefix: str) -> None:
    out = normalize(article(["Iraq attack kills 52", "2017-09-14 19:26"], [], lead=prefix + LEAD))
    assert out.split("\n\n")[1] == normalize(LEAD, strip_boilerplate=False)
    assert_story_kept(out)


def test_dateline_only_on_the_lead() -> None:
    later = "LONDON (Reuters) - Britain said it was monitoring the situation closely, a spokesman said on Friday."
    out = normalize("BAGHDAD (Reuters) - " + LEAD + "\n\n" + later)
    assert out == normalize(LEAD + "\n\n" + later, strip_boilerplate=False)


@pytest.mark.parametrize("caption", CAPTIONS)
def test_photo_credits_and_captions_removed(caption: str) -> None:
    text = article(["Iraq attack kills 52"], [])
    text = text.replace(BODY[0], caption + "\n\n" + BODY[0])
    out = normalize(text)
    assert normalize(caption, strip_boilerplate=False) not in out
    assert not re.search(r"reuters/|ap photo|getty|photo:|saad", out)
    assert_story_kept(out)


def test_caption_wrapped_over_lines_removed() -> None:
    wrapped = ("He said the contracts were from the U.S. Navy and Northrop.\n"
               "A worker walks past storage tanks at a refinery in Washington, October 19,\n"
               "1987. REUTERS/Nadia Rossi\n"
               "The orders are scheduled to be delivered in 1987.\n"
               "People walk past the headquarters of Herley Microwave\n"
               "Systems Inc in Lancaster, March 12, 1987.\n"
               "REUTERS/Maria\nMensah\n"
               "Reuter")
    assert strip_boilerplate(wrapped) == ("He said the contracts were from the U.S. Navy and Northrop.\n"
                                          "The orders are scheduled to be delivered in 1987.")


@pytest.mark.parametrize("line", FOOTERS)
@pytest.mark.parametrize("sep", ["\n\n", "\n"])
def test_footer_lines_removed(line: str, sep: str) -> None:
    out = normalize(article([], [line, "Read more on: iraq | syria"], sep=sep))
    assert normalize(line, strip_boilerplate=False) not in out.split("\n")
    assert_story_kept(out)
    assert out.endswith(normalize(BODY[-1], strip_boilerplate=False))


def test_wrapped_reporting_credit_removed() -> None:
    text = "The peso lost 22 pct.\nReuter\n(Reporting by Ravi Dubois in New York; Editing by Ahmed\nRossi)\nShare: f t in"
    assert strip_boilerplate(text) == "The peso lost 22 pct."


def test_mastheads_in_header_removed_but_not_in_body() -> None:
    text = article(["The Evening Courier", "Oil prices slip as supply worries ease", "Updated: April 9, 1987 at 15:10"], [])
    out = normalize(text)
    assert "courier" not in out and "oil prices slip" in out
    assert "daily news" in normalize(LEAD + "\n\nDaily News\n\n" + BODY[0])


def test_full_realistic_wire_copy() -> None:
    text = ("Capital Post\n\nThursday 5 March 1987 19.37 GMT\n\nBy Fatima Brown\n\n"
            "WASHINGTON (Reuters) - World Bank president Barber Conable said he believed Brazil would come up with a medium "
            "term economic plan.\n\n“Brazil would like to come up with such a plan,” he said, adding: “the moratorium is "
            "likely to be a temporary affair.”\n\nA general view of the city in Washington, March 5, 1987. REUTERS/Pedro "
            "Brown\n\nHe told Reuters the plan must be followed by talks.\n\nReuter\n\n(Reporting by Fatima Brown in "
            "Washington; Editing by John Okafor)\n\nRead more on: brazil | debt | usa\n\n© 1987 Reuters. All rights "
            "reserved.\n\nFollow us on Twitter and Facebook for the latest news")
    assert normalize(text) == (
        "world bank president barber conable said he believed brazil would come up with a medium term economic plan.\n\n"
        "\"brazil would like to come up with such a plan,\" he said, adding: \"the moratorium is likely to be a temporary "
        "affair.\"\n\nhe told reuters the plan must be followed by talks.")


STORY_LINES = [
    "He told Reuters on Monday that the deal was off.", "Reuters reported last week that the talks had stalled.",
    "By the end of the year, output should rise 5 pct.", "Share prices rose 5 pct on Monday.",
    "Updated guidance will be published on March 3, the company said.", "Related companies were not affected.",
    "Copyright law has not kept pace with the internet, he said.", "Follow-up talks are planned for June 3.",
    "Staff at the plant walked out on Monday.", "The AP reported that 12 people were hurt.", "Shr 17 cts vs 13 cts",
    "Qtr ended Feb 28", "Net 2.1 mln vs 1.03 mln", "Photo-finish results were announced at 10:18.",
    "Click-through rates have fallen, the firm said.", "Subscribers rose 12 pct to 3.4 million.",
    "More from the report: inflation rose in February.", "Writing by hand is a dying art, the survey said.",
    "1987 1986", "Monday", "Record March 31", "Pay April 15", "Associated Press reporters saw the damage.",
    "The mayor of Samarra, Mahmoud Khalaf, said security forces had regained control.",
    "Claiming responsibility", "Losing ground", "NOTE: figures are in billions of dollars.",
    "Anyone with questions can email jane_doe@fws.gov or call 734-288-6459.", "The dividend will be paid on\nApril 12.",
]


@pytest.mark.parametrize("sentence", STORY_LINES)
@pytest.mark.parametrize("where", ["middle", "end"])
def test_story_sentences_are_kept(sentence: str, where: str) -> None:
    paras = [LEAD, *BODY]
    paras.insert(2 if where == "middle" else len(paras), sentence)
    out = normalize("\n\n".join(paras))
    assert normalize(sentence, strip_boilerplate=False) in out.split("\n\n")
    assert_story_kept(out)


@pytest.mark.parametrize("lead", [
    "Roger Federer - nice bloke, fantastic tennis player - the ultimate sportsman, said Hewitt after the match.",
    "David Blunkett - who has resigned as home secretary - built his reputation as a plain-speaking Yorkshire man.",
    "An American Farm Bureau\nFederation (AFBF) official said that far from hurting Canadian\ncorn producers, farm programs help.",
    "U.S. - Japan trade talks will resume next week in Tokyo, officials from both countries said on Friday.",
])
def test_lead_that_only_looks_like_a_dateline_is_kept(lead: str) -> None:
    assert normalize(lead) == normalize(lead, strip_boilerplate=False)


def test_hard_wrapped_reuters_text_untouched() -> None:
    body = ("The Chicago Mercantile Exchange's (CME)\nboard of directors issued a letter to its members that sets\n"
            "limits, but does not ban, dual trading in the S and P 500\nfutures and options pit.\n    The rules prohibit "
            "brokers who execute customer orders to\ntrade for their own account, he told\nReuters.\n    Lead underwriters "
            "Wheat, First\nSecurities Inc and E.F. Hutton Group Inc <EFH> said.\n")
    assert strip_boilerplate(body + " Reuter\n") == body.rstrip("\n")


# ----------------------------------------------------------------------------- other languages
# Per language: boilerplate lines an outlet adds (timestamp, byline, footer) and story paragraphs, some of which start with
# the same words as the boilerplate ("Von den ...", "Autor projektu ...", "记者从...") or carry dates and times.
INTL = {
    "de": (["Aktualisiert: 03.01.2017, 10:18", "Stand: 03.01.2017 10:18 Uhr", "Dienstag, 3. Januar 2017, 10:18 Uhr",
            "Von Sabine Huber", "Von Sabine Huber und Max Weber, dpa"],
           ["Mehr zum Thema: Unwetter in Süddeutschland – die aktuelle Lage", "Lesen Sie auch: Die Donau steigt weiter"],
           ["Von den 1.200 Anwohnern der Altstadt wurden am Dienstag 300 in Notunterkünften untergebracht.",
            "Am 3. Januar 2017 um 10:18 Uhr erreichte der Pegel 9,80 Meter, sagte ein Sprecher der Stadt.",
            "Mehr zum Thema Hochwasserschutz will die Stadt im Februar vorlegen."]),
    "fr": (["Mis à jour le 3 janvier 2017 à 10h18", "Publié le 15/01/2017 à 22h18 - Mis à jour le 16/01/2017 à 08h05",
            "Par Jean Dupont", "Par Julien Marty et Claire Vidal"],
           ["Lire aussi : Municipales partielles, un test pour la majorité", "À lire aussi : Le Tarn-et-Garonne vote"],
           ["Par ailleurs, la liste de Claire Vidal devance de 1\u202f180 voix celle du maire sortant, selon la préfecture.",
            "Lire aussi le rapport de la préfecture publié lundi 3 janvier, a conseillé le candidat."]),
    "es": (["Actualizado: 03/01/2017 10:18", "Actualizado el 3 de enero de 2017 a las 10:18", "Por María López",
            "Por Lucía Ferrer | EFE"],
           ["Leer más: Las claves de la concentración bancaria", "Te puede interesar: El Ibex cierra en positivo"],
           ["Por la tarde, María López, portavoz del banco, declaró que la fusión se cerrará en marzo.",
            "El 3 de enero de 2017 a las 10:18 los consejos aprobaron la operación por unanimidad."]),
    "it": (["Aggiornato il 3 gennaio 2017, ore 10:18", "Ultimo aggiornamento: 03/01/2017 10:18", "Di Marco Rossi",
            "di Francesca Rinaldi"],
           ["Leggi anche: Terremoti, come comportarsi in caso di scossa"],
           ["Di Maio ha detto che il governo stanzierà 3 milioni di euro per i comuni colpiti dal sisma.",
            "La scossa è stata avvertita il 3 gennaio alle 6:42 in gran parte dell'Umbria."]),
    "pl": (["Zaktualizowano: 03.01.2017, 10:18", "Aktualizacja: 3 stycznia 2017, 10:18", "Autor: Jan Kowalski",
            "Autor: Anna Nowicka"],
           ["Czytaj też: Seria wypadków na dolnośląskich drogach", "Zobacz także: Utrudnienia na A4"],
           ["Autor raportu, Jan Kowalski, powiedział, że do wypadku doszło 3 stycznia o godzinie 5:40.",
            "Czytaj także komunikat policji opublikowany we wtorek, apelował rzecznik."]),
    "tr": (["Güncelleme: 03.01.2017 10:18", "Son güncelleme: 3 Ocak 2017 Salı 10:18", "Haber: Mehmet Yılmaz"],
           ["İlgili haberler: Doğu Karadeniz için turuncu kodlu uyarı", "İlgili Haber: Rize'de sel"],
           ["İlgili bakanlık 3 Ocak 2017 tarihinde yaptığı açıklamada 35 evin su altında kaldığını bildirdi.",
            "Haber ajansları, Rize Valisi Kemal Çeber'in saat 10:18'de açıklama yaptığını aktardı."]),
    "ru": (["Обновлено: 03.01.2017, 10:18", "Обновлено 03.01.2017 в 10:18", "3 января 2017, 10:18",
            "Автор: Иван Петров", "Автор: Ольга Смирнова"],
           ["Читайте также: Как изменится расписание поездов", "Читайте ещё: Транссиб восстановлен"],
           ["Автор проекта Иван Петров заявил, что движение восстановят 3 января к 10:18 по местному времени.",
            "Читайте также заявление РЖД, призвал представитель компании."]),
    "ar": (["تحديث: 03/01/2017", "آخر تحديث: 03/01/2017 - 10:18", "كتب: محمد العتيبي", "بقلم: سارة الأحمد"],
           ["اقرأ أيضا: الأرصاد تحذر من أمطار رعدية", "اقرأ أيضاً: السيول تغلق الأنفاق"],
           ["كتب الرئيس رسالة إلى أسر الضحايا يوم 3 يناير 2017 وعدهم فيها بالتعويض.",
            "وقال المتحدث إن 6 أشخاص لقوا حتفهم في جدة يوم الثلاثاء."]),
    "zh": (["2017-06-21 15:32\u3000来源：南国早报", "2017年1月3日 10:18 更新", "记者 陈静"],
           ["相关新闻：广西多地进入主汛期", "相关阅读：桂林暴雨已致5死"],
           ["记者从广西壮族自治区应急管理厅获悉，截至21日14时，暴雨已造成5人死亡。",
            "相关部门表示，将在6月21日发布新的预警。"]),
    "ja": (["2017年1月3日 10:18 更新", "【上越支局\u3000佐藤美咲】"],
           ["関連記事：北陸で大雪続く\u3000交通への影響は"],
           ["関連記事によると、上越市では3日朝までの24時間に112センチの降雪を観測した。",
            "【速報】は午前10時18分に出された。"]),
    "th": (["อัปเดต 4 ต.ค. 2560 เวลา 10:18 น.", "โดย ทีมข่าวภูมิภาค"],
           ["อ่านข่าวที่เกี่ยวข้อง: กรมอุตุฯ เตือนภาคเหนือฝนตกหนักต่อเนื่อง"],
           ["ระดับน้ำในแม่น้ำปิงเพิ่มสูงขึ้นถึง 4.90 เมตร เมื่อเวลา 06.00 น. วันที่ 4 ตุลาคม",
            "โดยมีประชาชนได้รับผลกระทบแล้ว 3,214 ครัวเรือน"]),
}
INTL_BOILERPLATE = [line for header, footer, _ in INTL.values() for line in header + footer]
INTL_STORY = [line for _, _, story in INTL.values() for line in story]


@pytest.mark.parametrize("lang", sorted(INTL))
@pytest.mark.parametrize("sep", ["\n\n", "\n"])
def test_other_language_boilerplate_removed_story_kept(lang: str, sep: str) -> None:
    header, footer, story = INTL[lang]
    for line in header + footer:
        text = sep.join(["Headline " + lang, *header, *story, *footer]) if line in header else sep.join([*story, line])
        out = normalize(text).split("\n")
        assert normalize(line, strip_boilerplate=False) not in out, line
        for para in story:
            assert normalize(para, strip_boilerplate=False) in out, para
    for para in story:  # a story paragraph on its own is kept too
        assert normalize(para) == normalize(para, strip_boilerplate=False)


@pytest.mark.parametrize(("styled", "plain"), [
    ("٣٤٠ بلاغا و٩٥ شخصا", "340 بلاغا و95 شخصا"), ("۱۳۹۵ خورشیدی", "1395 خورشیدی"), ("वर्ष २०१७ में", "वर्ष 2017 में"),
    ("๔.๙๐ เมตร", "4.90 เมตร"), ("১২৩", "123"), ("كِتَابٌ", "كتاب"), ("كـتـاب", "كتاب"), ("عَلَّقَتْ", "علقت"),
    ("بِسْمِ ٱللَّٰهِ", "بسم ٱلله"), ("שָׁלוֹם", "שלום"), ("Ёлка и углём", "елка и углем"), ("RİZE İSTANBUL", "rize istanbul"),
    ("de 1\u202f180 voix", "de 1180 voix"), ("1\u2009234\u2009567 zł", "1234567 zł"), ("le 3\u00a0000e", "le 3000e"),
    ("rund 1.200.000 Euro", "rund 1200000 Euro"), ("12.345.678,50 zł", "12345678,50 zł"),
])
def test_script_variants_fold(styled: str, plain: str) -> None:
    assert normalize(styled) == normalize(plain)


@pytest.mark.parametrize("text", ["Stand 3.141 und 1.200 Euro, Version 1.2.3 und 1.200.000.5",
                                  "en 2016\u00a0180 personnes", "1\u00a01800 m", "12,5\u00a0000", "3\u00a0km", "ż ė ȧ",
                                  "Żółć", "İ\u0307", "ąę"])
def test_script_folding_leaves_other_text(text: str) -> None:
    out = normalize(text)
    assert out == normalize(out)
    if text.isascii():
        assert out == text.lower()
    if "\u00a0" in text:
        assert " " in out  # not a digit group: the separator stays a space
    if text.startswith(("ż", "Ż", "ą")):
        assert out == text.lower()  # letters with a dot above (precomposed after NFKC) keep it


# ----------------------------------------------------------------------------- character normalisation
def test_character_normalisation() -> None:
    raw = ("<p>Baghdad\u2019s \u201cbig\u201d day&nbsp;\u2014 the U.S.\u00a0said&amp;quot;ok&amp;quot;</p><p>Caf\u00e9 "
           "\u2013 \u2212 \u2012 \u2015 co\u00adoperate\u200b \uff21\uff22\t\t\r\n\r\n\r\n\r\nIt ended.</p>")
    assert normalize(raw) == "baghdad's \"big\" day - the u.s. said\"ok\"\n\ncafé - - - - cooperate ab\n\nit ended."
    assert normalize("Straße ÉCOLE") == "strasse école"
    assert normalize("  a  \n\n\n\n b \n c  ") == "a\n\nb\nc"
    assert normalize("Gains at <EFH> & <GM> rose") == "gains at <efh> & <gm> rose"
    assert normalize("<Strong Point Inc> and <P> rose &amp; fell") == "<strong point inc> and <p> rose & fell"
    assert normalize("line one<br>line two &lt;A.N&gt;") == "line one\nline two <a.n>"
    assert normalize("&lt;p&gt;Escaped&lt;/p&gt;&lt;p&gt;twice&lt;/p&gt;") == "escaped\n\ntwice"


def test_strip_boilerplate_on_raw_text() -> None:
    raw = ("Updated:\u00a0Jan 3, 2017\u00a010:18 AM ET\r\nBy\u00a0John Smith\r\nBAGHDAD (Reuters)\u00a0\u2014 "
           "Baghdad\u2019s mayor said on Monday the \u201cworst\u201d was over.\r\n(Reporting by Ahmed Rasheed; Editing by "
           "Mark Heinrich)\r\n")
    assert strip_boilerplate(raw) == "Baghdad\u2019s mayor said on Monday the \u201cworst\u201d was over.\r"


# ----------------------------------------------------------------------------- samples
def _raw_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.split()) > 20 and "REUTERS/" not in p]


def _survives(para: str, out: str) -> bool:
    """The paragraph is in the output, allowing only a dateline of up to 4 words to be cut from its start."""
    words = normalize(para, strip_boilerplate=False).split(" ")
    return any(" ".join(words[k:]) in out for k in range(5))


@pytest.mark.parametrize("name,absent", [
    ("000_", ["reuters/ahmed saad", "thứ ba", "10:18", "reuters, baghdad"]),
    ("001_", ["reuters/ahmed saad", "thứ ba", "10:18", "people look at a burned vehicle"]),
    ("002_", ["2017-09-14", "read more on", "file photo", "nasiriyah - gunmen"]),
])
def test_samples(name: str, absent: list[str]) -> None:
    path = next(SAMPLES.glob(name + "*.txt"))
    raw = path.read_text(encoding="utf-8")
    out = normalize(raw)
    for s in absent:
        assert s not in out
    paras = _raw_paragraphs(raw)
    assert len(paras) >= 5
    for p in paras:
        assert _survives(p, out), p
    assert not out.rstrip().endswith("reuters")


# ----------------------------------------------------------------------------- dev data
def _load(name: str) -> list[dict]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}


@pytest.mark.shared
def test_clean_wire_text_is_not_stripped() -> None:
    docs = [d for d in _load("syndication-dev.jsonl.gz") if d["kind"] in ("original", "negative")]
    bad = words = removed = 0
    for d in docs:
        out = strip_boilerplate(d["text"])
        kept = out.split("\n")
        lost = [ln for ln in d["text"].split("\n") if ln.strip() and not any(k and ln.endswith(k) for k in kept)]
        removed += len(d["text"].split()) - len(out.split())
        words += len(d["text"].split())
        bad += any(len(ln.split()) > 12 for ln in lost)
    ok = 1 - bad / len(docs)
    print(f"\nclean wire docs: {len(docs)}, with a >12-word paragraph removed: {bad} ({1 - ok:.3%}); "
          f"words removed (mostly the dateline and the 'Reuter' sign-off): {removed / words:.2%}")
    assert ok >= 0.995


@pytest.mark.shared
def test_copies_get_closer_to_their_originals() -> None:
    docs = _load("syndication-dev.jsonl.gz")
    orig = {d["gold"]: d for d in docs if d["kind"] in ("original", "negative")}
    copies = [d for d in docs if d["kind"] == "copy"]
    before = after = novel_before = novel_after = 0.0
    for d in copies:
        o = orig[d["gold"]]
        a, b = _shingles(d["text"]), _shingles(o["text"])
        na, nb = _shingles(normalize(d["text"])), _shingles(normalize(o["text"]))
        before += len(a & b) / max(1, len(a | b))
        after += len(na & nb) / max(1, len(na | nb))
        novel_before += len(a - b) / max(1, len(a))
        novel_after += len(na - nb) / max(1, len(na))
    n = len(copies)
    print(f"\ncopies: {n}; mean word-3-shingle Jaccard to original {before / n:.3f} -> {after / n:.3f}; "
          f"mean share of copy shingles absent from the original {novel_before / n:.3f} -> {novel_after / n:.3f}")
    assert after / n > before / n + 0.05
    assert novel_after < novel_before


@pytest.mark.shared
def test_added_boilerplate_lines_are_removed() -> None:
    docs = _load("syndication-dev.jsonl.gz")
    orig = {d["gold"]: d for d in docs if d["kind"] in ("original", "negative")}
    added = removed = 0
    for d in docs:
        if d["kind"] != "copy":
            continue
        vocab = set(re.findall(r"\w+", normalize(orig[d["gold"]]["text"], strip_boilerplate=False)))
        title = set(re.findall(r"\w+", normalize(d["title"], strip_boilerplate=False)))
        out = " " + " ".join(re.findall(r"\w+", normalize(d["text"]))) + " "
        for line in d["text"].split("\n"):
            w = re.findall(r"\w+", normalize(line, strip_boilerplate=False))
            if not w or set(w) <= title or sum(t in vocab for t in w) >= len(w) / 2:
                continue  # story text (possibly restyled) or the headline
            added += 1
            removed += " " + " ".join(w) + " " not in out
    print(f"\nlines added to copies (mostly non-story words): {added}, removed by normalize: {removed} ({removed / added:.1%})")
    assert removed / added >= 0.95


# ----------------------------------------------------------------------------- properties
FRAGMENTS = [*TIMESTAMPS, *BYLINES, *CAPTIONS, *FOOTERS, *DATELINES, *STORY_LINES, *INTL_BOILERPLATE, *INTL_STORY, LEAD, "", " ", "&amp;", "&Amp;", "<p>",
             "<br/>", "ＡＢ", "\u00a0", "ǰ", "ß", "İ", "\u0301", "&#x2014;", "＆ａｍｐ；", "REUTERS/", "(Reporting by", "Photo",
             "\r\n", "\u2028", "\u0307", "ё", "\u0640", "\u064e", "\u0654", "٣", "1\u202f", "\u00a0180", ".200.000", "1.200"]
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=12).map("\n".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=10)), max_size=12).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
# Page furniture cut from a line ("All rights reserved.") leaves it short enough to be a footer line.
@example("Copyright 2017 Reuters. All rights reserved.Thứ Ba, 03/01/2017, 10:18Am 3. Januar 2017 um 10:18 Uhr erreichte der "
         "Pegel 9,80 Meter, sagte ein Sprecher der Stadt.Di Maio ha detto che il governo stanzierà 3 milioni di euro per i "
         "comuni colpiti dal sisma.")
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    plain = normalize(text, strip_boilerplate=False)
    assert normalize(plain, strip_boilerplate=False) == plain


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(texts, st.lists(st.sampled_from([*DATELINES, *STORY_LINES, LEAD, "", " ", "\r", "<p>"]), max_size=8).map("\n".join)))
@example("PARIS (AFP) - One.\nLONDON (Reuters) - Two.")  # (a compilation: two datelines)
def test_normalizing_and_counting_datelines_at_once_equals_each_alone(text: str) -> None:
    """normalize_counting_datelines, which splits a text into lines once when cleaning leaves it as it is, gives
    what normalize and count_datelines give apart."""
    for strip in (True, False):
        assert normalize_module.normalize_counting_datelines(text, strip_boilerplate=strip) == (
            normalize(text, strip_boilerplate=strip), normalize_module.count_datelines(text))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_strip_boilerplate_only_deletes_lines_or_prefixes(text: str) -> None:
    src = text.split("\n")
    j = 0
    for line in strip_boilerplate(text).split("\n") if strip_boilerplate(text) else []:
        while j < len(src) and not (src[j] == line or (line and src[j].endswith(line))):
            j += 1
        assert j < len(src), (line, src)
        j += 1


# ----------------------------------------------------------------------------- the fast paths agree with the plain regexes
DATELINE_STRONG = re.compile(f"{normalize_module._DATELINE_PAREN.pattern}|{normalize_module._DATELINE_MONTH.pattern}")
ALTERNATION_WORDS = [*normalize_module._MONTHS, *normalize_module._WEEKDAYS, *normalize_module._LABELS, *normalize_module._SOCIAL]
line_texts = st.one_of(
    texts,
    st.lists(st.sampled_from(["PARIS", "NEW YORK", "U.S.", "Foo", "(AFP)", "(Reuters)", "(AP/AFP)", " ", " , ", ",", "-", "—",
                              ":", "June 18", "Sept.", "2017", "\t", "Photo:", "/", "REUTERS/", "Getty Images", ")", ").", "(File",
                              "via Reuters", "by", "syndicated feed", "contributed to this report", "a", "x", "AGO", "3 mins read",
                              "10:18", "٣"]), max_size=14)
    .map("".join),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line_texts)
def test_line_prefilters_agree_with_the_regexes(text: str) -> None:
    n = normalize_module
    for line in {text, text.lstrip(), n._view(text), n._view(text) + " text"}:
        slow = DATELINE_STRONG.match(line)
        fast = n._strong_dateline(line)
        assert (slow and slow.span()) == (fast and fast.span())
        assert n._credit_end(line) == bool(n._CREDIT_END.search(line, max(0, len(line) - 160)))
        assert n._tail_hint(line) == bool(n._TAIL_HINT.search(line.lower()))
        assert n._may_signal_date(line) or not n._DATE_SIGNAL.search(line)
        assert n._unify(line, n._rare(line)) == n._CHAR_RE.sub(n._char_sub, line)


# The words the line screen looks up, and what else makes it pass a line to the rules.
SCREEN_WORDS = sorted(w for w in {*normalize_module._SHORT_FIRST, *normalize_module._SHORT_FIRST_LOW, *normalize_module._SOCIAL_WORDS,
                                  *normalize_module._DATE_FIRST, *normalize_module._FOOTER_FIRST, *normalize_module._SHORT_LAST,
                                  *normalize_module._SHORT_LAST_LOW} if w.isascii())
screen_tokens = st.one_of(
    st.sampled_from(SCREEN_WORDS), st.sampled_from(SCREEN_WORDS).map(str.title), st.sampled_from(SCREEN_WORDS).map(str.upper),
    st.sampled_from(["(", ")", ").", "(Reuters)", "-", ":", " - ", "/", "REUTERS/Ahmed", "1987/88", "/ AFP", "/via", "via", "@", "a@b.com", "12:30", "1987", "3",
                     "a.m.", "p.M.", ".", "Contributed", "syndicated FEED", "ributed", "feed", "TED", "©", "é", "\t", "\u00a0",
                     "", "the", "said", "Reporting by", "(Reporting by Max Roe; Editing by Ann Lee)", "By", "By:", "Photo:", "NASIRIYAH", "(AFP) -", "(AFP):",
                     # (characters beyond ASCII: in first and last words, in credits, in the rules' punctuation)
                     "Автор:", "Иван Петров", "«Reuters»", "José", "REUTERS/José Ruiz", "(AP Photo/Łukasz Nowak)", "Müller)",
                     "新华社记者", "记者 陈静", "อ่าน", "£5m", "«", "»", "•", "·", "İlgili", "Dünya", "déc.", "©2017", "½"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
)
screen_lines = st.lists(screen_tokens, max_size=70).map(" ".join)
# Lines only one of the screen's conditions passes (a contact by its "@", a long caption by its final ")").
SCREEN_ONLY = ["Reach John at jsmith@example.com",
               "Soldiers stand guard at a checkpoint near the city of Nasiriyah in southern Iraq on Monday. (AP Photo)"]
screen_texts = st.lists(st.one_of(screen_lines, screen_lines.map(str.strip), st.sampled_from(FRAGMENTS),
                                  st.sampled_from(FRAGMENTS).map(str.strip), st.sampled_from(SCREEN_ONLY)),
                        max_size=8).map("\n".join)


credit_pieces = st.sampled_from(
    ["/", ")", ").", " )", ".", " ", "  ", "via ", "Via ", "via", "vi", "A", "a", "1", "(", "/ via AP", "REUTERS", "Reuters", "AFP",
     "Getty Images", "EPA-EFE", "AP Photo", "/File Photo", "/FILE PHOTO", "/Pool", "/via Reuters", "John", "J.R.", "O'Brien",
     "Smith", "Evan Vucci", "(AP Photo", "(AFP Photo", "(Reuters photo", "(EPA Photo", "(File photo", "(file photo",
     "(photo", "(Photo by", "(PHOTO:", "photo", "Associated Press", "Agence France-Presse", "said", "the", "/ AFP", "/Getty Images"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(credit_pieces, max_size=14).map(" ".join), st.lists(credit_pieces, max_size=14).map("".join),
       st.integers(0, 12))
@example("Police at the scene REUTERS/John Smith Evan Vucci )", "", 0)  # (the most words a credit leaves after its "/")
def test_screen_credit_hint_passes_every_credit(spaced: str, joined: str, start: int) -> None:
    """The screen's compiled credit hint holds on every printable ASCII line (not ending in a space) that
    normalize._credit_end finds a photo credit at the end of."""
    from dedup import _jit_text, kernels

    if not kernels.available():
        pytest.skip("numba not installed")
    for line in (spaced.rstrip(" "), joined.rstrip(" ")):
        at = min(start, len(line))
        data = np.frombuffer(line.encode("ascii"), dtype=np.uint8)
        if normalize_module._CREDIT_END.search(line, at) is not None:
            assert _jit_text._credit_hint(data, at, len(line)), line


def assert_screen_passes_what_the_rules_see(text: str, *, own_views: bool = False) -> None:
    """Every line the compiled screen leaves out is its own view and no rule applies to it; a line it passes with
    an even code is its own view. (``own_views``: screened as a _clean output, whose lines are their own views.)"""
    n = normalize_module
    codes = {code >> 1: code & 1 for code in n._screen(text, own_views=own_views)}
    for i, line in enumerate(text.split("\n")):
        if codes.get(i, 0) == 0:
            assert n._view(line) == line, line
        if i not in codes and line:
            assert n._line_rule(line) == 0, line


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(screen_texts)
# (A credit whose "/" is 54 characters but 96 bytes from the end: the screen's windows are in characters.)
@example("Protesters gather outside the court in the capital on Monday as police watch them REUTERS/Lukasz "
         "Zółćęśążółćęśąż Zółćęśążółćęśąż Zółćęśążółćęśąż")
def test_line_screen_passes_every_line_a_rule_may_apply_to(text: str) -> None:
    """With the kernels in use, strip_boilerplate runs the line rules only on the lines a compiled screen passes:
    the others are printable ASCII that no rule can apply to (by length, end, tail hint, first and last words).
    The result equals the one without the screen."""
    from unittest import mock

    from dedup import kernels

    if not kernels.available():
        pytest.skip("numba not installed")
    kernels.warm_up()
    assert_screen_passes_what_the_rules_see(text)
    cleaned = normalize_module._clean(text)  # (as normalize screens it: lines beyond ASCII by the same signs)
    assert_screen_passes_what_the_rules_see(cleaned, own_views=True)
    with mock.patch.object(kernels, "loaded", lambda: False):
        expected, expected_cleaned = strip_boilerplate(text), strip_boilerplate(cleaned)
    assert strip_boilerplate(text) == expected
    assert normalize_module._strip(cleaned, own_views=True) == expected_cleaned


@pytest.mark.shared
def test_line_screen_on_real_news() -> None:
    """The screen's promise holds on every line of the real corpora, as normalize gives them to strip_boilerplate."""
    from dedup import kernels
    from dedup.normalize import _clean, _markup

    if not kernels.available():
        pytest.skip("numba not installed")
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    kernels.warm_up()
    for name in ("syndication-dev", "reuters21578", "bbc"):
        with gzip.open(DATA / f"{name}.jsonl.gz", "rt") as f:
            for line in f:
                cleaned = _clean(_markup(json.loads(line).get("text") or ""))
                assert_screen_passes_what_the_rules_see(cleaned)
                assert_screen_passes_what_the_rules_see(cleaned, own_views=True)

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(texts, st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)))
def test_a_clean_texts_lines_are_their_own_views(text: str) -> None:
    """What normalize's screen of a _clean output relies on: each of its lines is what the rules see of it."""
    for line in normalize_module._clean(text).split("\n"):
        assert normalize_module._view(line) == line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_clean_of_a_clean_text_keeps_its_spacing(text: str) -> None:
    cleaned = normalize_module._clean(text)
    for again in (cleaned, cleaned.casefold()):  # what _settle_case cleans with spaced=True
        assert normalize_module._clean(again, spaced=True) == normalize_module._clean(again)


_LATIN1 = [chr(c) for c in range(256)]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*_LATIN1, " ", "\n", ".", "1", "000", "1.000.000", "ß", "İ", "µ", "ª", "\u2019"]),
                max_size=40).map("".join))
def test_settling_the_case_of_latin1_text_skips_what_changes_nothing(text: str) -> None:
    """The case-folded output of _clean within Latin-1 is settled as it is: cleaning and case-folding it again
    (what _settle_case_fully does, and _settle_case does beyond Latin-1) give the same."""
    n = normalize_module
    folded = n._clean(text).casefold()
    assert n._settle_case(folded, spaced=True) == n._settle_case_fully(folded, spaced=True)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*_LATIN1, " ", "\n", "1.000.000", "ß", "µ", "İ", "Σ", "\u2019", "ﬁ"]), max_size=40).map("".join),
       st.booleans())
def test_folding_the_case_agrees_with_casefold_then_settling(text: str, cleaned_first: bool) -> None:
    """The byte-wise fast path of Latin-1 text gives what str.casefold and _settle_case give, on any text and on
    _clean output (the texts ``spaced`` is meant for)."""
    n = normalize_module
    text = n._clean(text) if cleaned_first else text
    for spaced in (True, False):
        assert n._fold_case(text, spaced=spaced) == n._settle_case(text.casefold(), spaced=spaced)


def test_folding_the_case_of_every_latin1_character() -> None:
    n = normalize_module
    for c in _LATIN1:
        for text in (f"A{c}b", n._clean(f"A{c}b 1.000")):
            for spaced in (True, False):
                assert n._fold_case(text, spaced=spaced) == n._settle_case(text.casefold(), spaced=spaced), repr(c)


def test_settling_the_case_of_every_latin1_pair() -> None:
    """As above for every pair of Latin-1 characters, next to a word and a dotted number."""
    n = normalize_module
    for a in _LATIN1:
        for b in _LATIN1:
            folded = n._clean(f"x{a}{b} 1.000 {a}").casefold()
            if n.latin1(folded) is not None:
                assert n._settle_case(folded, spaced=True) == n._settle_case_fully(folded, spaced=True), (a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*ALTERNATION_WORDS, "ſ", "K", "ı", "İ", " ", ".", "1"]), max_size=4).map("".join))
def test_grouped_alternations_match_like_the_flat_ones(text: str) -> None:
    flat = re.compile("(?i:" + "|".join(sorted(map(re.escape, ALTERNATION_WORDS), key=len, reverse=True)) + ")")
    grouped = re.compile(f"(?i:{normalize_module._alt(ALTERNATION_WORDS)})")
    for start in range(len(text) + 1):
        a, b = flat.match(text, start), grouped.match(text, start)
        assert (a and a.span()) == (b and b.span())


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([" ", "  ", "\n", "\n\n", "\n\n\n", " \n", "\n ", "a", "bc", "é", "\u0100", "\t"]),
                max_size=30).map("".join))
def test_collapse_checked_by_the_kernel_equals_the_searches(text: str) -> None:
    """With the kernels in use, _collapse first asks a compiled pass whether a Latin-1 text needs more than a
    strip; the result is the plain searches' result."""
    from unittest import mock

    from dedup import kernels
    from dedup.normalize import _collapse

    if not kernels.available():
        pytest.skip("numba not installed")
    with mock.patch.object(kernels, "loaded", lambda: False):
        expected = _collapse(text)
    assert _collapse(text) == expected
    assert kernels.has_gaps(text.encode("utf-8")) == any(g in text for g in ("  ", " \n", "\n ", "\n\n\n"))
