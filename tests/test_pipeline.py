"""cluster(): stories on samples and constructed cases, scores against plain references, options."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from dedup import Document, InputError, Options, OptionError, cluster
from dedup.confirm import common_shingles, tfidf_matrix, row_dots
from dedup.normalize import normalize
from dedup.read import read_documents
from dedup.shingle import shingle_batch, shingles
from dedup.tokenize import tokenize_batch, tokens

from conftest import SAMPLES


@pytest.fixture(scope="module")
def samples() -> dict[str, Document]:
    return {d.id[:3]: d for d in read_documents([SAMPLES])}


def paragraphs(doc: Document) -> list[str]:
    return [p for p in doc.text.split("\n\n") if len(p.split()) > 12]


def test_samples_cluster_correctly(samples: dict[str, Document]) -> None:
    result = cluster(samples.values())
    a, b, c = (samples[k].id for k in ("000", "001", "002"))
    assert result.assignments[a] == result.assignments[b] == a  # earliest in input order names the story
    assert result.assignments[c] == c
    assert result.cluster_of(a).members == (a, b)
    (pair,) = result.pairs
    assert {pair.a, pair.b} == {a, b}
    assert 0 < pair.jaccard <= 1 and 0 < pair.cosine <= 1 and 0 < pair.containment <= 1
    assert result.stats["documents"] == 3 and result.stats["clusters"] == 2 and result.stats["duplicates"] == 1


def test_cluster_id_is_earliest_by_date(samples: dict[str, Document]) -> None:
    early = Document(id="late-copy", text=samples["001"].text, date=datetime(2017, 1, 2))
    late = Document(id="orig", text=samples["000"].text, date=datetime(2017, 1, 5))
    result = cluster([late, early])
    assert result.assignments == {"orig": "late-copy", "late-copy": "late-copy"}


def test_truncated_copy_joins_its_story(samples: dict[str, Document]) -> None:
    first = paragraphs(samples["000"])[:3]
    truncated = Document(id="trunc", text="\n\n".join(first))
    result = cluster([samples["000"], truncated, samples["002"]])
    assert result.assignments["trunc"] == samples["000"].id


def test_roundup_does_not_join_or_chain_stories(samples: dict[str, Document]) -> None:
    # A digest quoting the leads of two different stories must stay alone and
    # must not glue the stories together.
    lead_a = paragraphs(samples["000"])[:2]
    lead_c = paragraphs(samples["002"])[:2]
    roundup = Document(id="roundup", text="Morning briefing\n\n" + "\n\n".join(lead_a + lead_c))
    docs = [samples["000"], samples["001"], samples["002"], roundup]
    result = cluster(docs)
    assert result.assignments[samples["001"].id] == samples["000"].id
    assert result.assignments[samples["002"].id] == samples["002"].id
    assert result.assignments["roundup"] == "roundup"


def test_the_garbage_collector_is_paused_only_while_the_result_is_built(samples: dict[str, Document],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """cluster() turns the cyclic collector off while it builds the result (objects without cycles) and back to
    what it was after, on or off, also when building fails."""
    import gc

    from dedup import pipeline

    seen = []
    build = pipeline._result

    def recording(*args):
        seen.append(gc.isenabled())
        return build(*args)

    monkeypatch.setattr(pipeline, "_result", recording)
    for on in (True, False):
        (gc.enable if on else gc.disable)()
        try:
            cluster(list(samples.values()))
            assert gc.isenabled() == on
        finally:
            gc.enable()
    assert seen == [False, False]
    monkeypatch.setattr(pipeline, "_result", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cluster(list(samples.values()))
    assert gc.isenabled()


def test_empty_and_tiny_documents_are_singletons() -> None:
    docs = [Document(id="e1", text=""), Document(id="e2", text="   "), Document(id="w", text="Hello")]
    result = cluster(docs)
    assert result.assignments == {"e1": "e1", "e2": "e2", "w": "w"}
    assert len(result.clusters) == 3


def test_exact_copies_cluster_even_when_short() -> None:
    text = "Shares of Acme rose 5 pct on Monday after the company reported record profit."
    docs = [Document(id=str(i), text=text) for i in range(4)] + [Document(id="x", text="Rain is expected tomorrow.")]
    result = cluster(docs)
    assert {result.assignments[str(i)] for i in range(4)} == {"0"}
    assert result.assignments["x"] == "x"


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(InputError, match="duplicate document id 'a'"):
        cluster([Document(id="a", text="x"), Document(id="a", text="y")])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cosine": 1.5}, "cosine must be a number from 0 to 1"),
        ({"lsh_threshold": 0}, "lsh_threshold must be between 0 and 1"),
        ({"shingle_size": 0}, "shingle_size must be an integer"),
        ({"no_such_option": 1}, "unknown option"),
        ({"source_share": 0.9}, "source_share .* must be smaller than dominant_share"),
    ],
)
def test_bad_options_say_how_to_fix(settings: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        cluster([Document(id="a", text="x")], **settings)


def test_options_object_and_keywords_are_exclusive() -> None:
    with pytest.raises(OptionError, match="not both"):
        cluster([], options=Options(), cosine=0.5)


def test_options_take_effect(samples: dict[str, Document]) -> None:
    strict = Options(cosine=0.99, strong_cosine=0.99, containment=0.99)
    assert len(cluster(samples.values(), options=strict).clusters) == 3
    assert len(cluster(samples.values(), containment=0.99, strong_cosine=0.99, cosine=0.99).clusters) == 3
    assert len(cluster(samples.values()).clusters) == 2


def test_tfidf_cosine_equals_scikit_learn_vectorizer(samples: dict[str, Document]) -> None:
    texts = [normalize(d.text) for d in samples.values()]
    batch = tokenize_batch(texts)
    fast = tfidf_matrix(batch)
    plain = TfidfVectorizer(analyzer=tokens, sublinear_tf=True).fit_transform(texts)
    expected = cosine_similarity(plain)
    for i in range(3):
        for j in range(3):
            got = row_dots(fast, np.array([i]), np.array([j]))[0]
            assert got == pytest.approx(expected[i, j], abs=1e-9)


def test_common_shingles_equal_set_intersection(samples: dict[str, Document]) -> None:
    texts = [normalize(d.text) for d in samples.values()]
    batch = tokenize_batch(texts)
    sb = shingle_batch(batch, n=3)
    sets = [set(shingles(batch.doc_tokens(d), n=3)) for d in range(3)]
    left, right = np.array([0, 0, 1]), np.array([1, 2, 2])
    got = common_shingles(sb, left, right)
    assert got.tolist() == [len(sets[a] & sets[b]) for a, b in zip(left, right)]
    assert sb.sizes().tolist() == [len(s) for s in sets]


def test_shared_syndication_quality_bar(shared_data) -> None:
    from dedup.evaluate import score_clusters
    import gzip, json

    path = shared_data / "syndication-dev.jsonl.gz"
    records = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    result = cluster(read_documents([path]))
    scores = score_clusters(result.assignments, {r["id"]: r["gold"] for r in records})
    assert scores.pairwise_f1 >= 0.95 and scores.adjusted_rand >= 0.95
    sizes = {c.id: len(c.members) for c in result.clusters}
    merged = [r["id"] for r in records if r["kind"] == "roundup" and sizes[result.assignments[r["id"]]] > 1]
    assert merged == []


def test_shared_ecbplus_never_mixes_events(shared_data) -> None:
    from dedup.evaluate import score_clusters
    import gzip, json

    for name in ("ecbplus-dev", "ecbplus-train"):
        path = shared_data / f"{name}.jsonl.gz"
        gold = {r["id"]: r["gold"] for r in map(json.loads, gzip.open(path, "rt", encoding="utf-8"))}
        result = cluster(read_documents([path]))
        assert score_clusters(result.assignments, gold).mixed_clusters == 0


WIRE = (
    "FRANKFURT, March 3 (Reuters) - Germany's Bundesbank left its key lending rates unchanged on Thursday, "
    "keeping the discount rate at 3.0 percent and the Lombard rate at 5.0 percent, a spokesman said after "
    "the central bank council meeting.\n\nThe decision had been widely expected by money market dealers, who "
    "said the bank would wait for clearer signs of the mark's direction before moving rates again."
)
LOCAL = (
    "Bankers in Hamburg said on Thursday that local lending to small exporters had slowed in February, "
    "with several firms postponing investment until the currency settles.\n\n"
    "The chamber of commerce said 14 of its 120 member firms had cancelled orders from the United States "
    "since January, and that its survey of the port's shipping agents showed volumes down 6 percent.\n\n"
)
LOCAL_2 = (
    "In Munich, the regional savings banks reported record deposits for the month as households put off "
    "large purchases, according to figures published by their association on Thursday.\n\n"
    "Deposits rose by 2.3 billion marks to 81 billion, the association said, the biggest monthly rise since 1983.\n\n"
)


def test_short_wire_item_inside_a_local_story_is_caught() -> None:
    docs = [Document(id="wire", text=WIRE), Document(id="local", text=LOCAL + WIRE),
            Document(id="other", text=LOCAL_2)]
    result = cluster(docs)
    assert result.assignments == {"wire": "wire", "local": "wire", "other": "other"}
    (pair,) = result.pairs
    assert pair.containment >= 0.9 > pair.jaccard


def test_wire_items_inside_two_local_stories_do_not_chain_other_stories() -> None:
    # Both local stories carry the same wire item: they join its story. A third page that quotes the
    # wire item and a different local story is a digest and glues nothing.
    digest = Document(id="digest", text="Business briefing\n\n" + WIRE + "\n\n" + LOCAL_2)
    docs = [Document(id="wire", text=WIRE), Document(id="local", text=LOCAL + WIRE),
            Document(id="munich", text=LOCAL_2), digest]
    result = cluster(docs)
    assert result.assignments["local"] == "wire"
    assert result.assignments["munich"] == "munich"
    assert result.assignments["digest"] == "digest"


@pytest.mark.parametrize("words, scale", [(["story", "said", "東京", "42"], 1), (["新华社记者报道今天东京的消息", "42"], 3),
                                          (["ข่าววันนี้ที่กรุงเทพ", "news"], 3), ([], 1)])
def test_a_quoted_run_is_scaled_by_1_or_3_as_find_digests_reads_it(words: list[str], scale: int) -> None:
    """find_digests reads the run scale only when it decides (a run between source_run and 3 x source_run): it is
    1 for spaced scripts and 3 when most tokens are bigrams of an unspaced script, never anything else."""
    from dedup.digests import _run_scale

    assert _run_scale(tokenize_batch([normalize(" ".join(words))]), 0) == scale
