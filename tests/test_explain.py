"""dedup explain: scores, shared passages, decision and reason, through the API and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dedup import Document, cluster
from dedup.cli import main
from dedup.errors import DedupError
from dedup.explain import explain
from dedup.read import read_documents

from conftest import SAMPLES


@pytest.fixture(scope="module")
def samples() -> list[Document]:
    return list(read_documents([SAMPLES]))


def test_copies_are_explained_with_passages(samples: list[Document]) -> None:
    a, b, _ = samples
    result = explain(a, b)
    assert result.is_copy and result.reason.startswith("copy:")
    assert result.passages and result.passages[0].words >= 20
    joined_a, joined_b = " ".join(result.tokens_a), " ".join(result.tokens_b)
    for passage in result.passages:
        # every passage really occurs in both normalised texts, at the stated positions
        assert passage.text in joined_a and passage.text in joined_b
        assert result.tokens_a[passage.start_a : passage.start_a + passage.words] == tuple(passage.text.split())
        assert result.tokens_b[passage.start_b : passage.start_b + passage.words] == tuple(passage.text.split())
    assert [p.words for p in result.passages] == sorted((p.words for p in result.passages), reverse=True)
    assert "car bomb killed 24 people" in result.passages[0].text or any("car bomb" in p.text for p in result.passages)


def test_different_stories_are_explained(samples: list[Document]) -> None:
    a, _, c = samples
    result = explain(a, c)
    assert not result.is_copy and result.reason.startswith("not a copy:")
    assert f"{result.cosine:.2f}" in result.reason


def test_scores_match_the_clustering_run(samples: list[Document]) -> None:
    a, b, _ = samples
    result = explain(a, b, corpus=samples)
    (pair,) = cluster(samples).pairs
    assert (result.jaccard, result.cosine, result.containment) == (pair.jaccard, pair.cosine, pair.containment)
    assert result.same_cluster is True


def test_digest_is_explained_as_kept_apart(samples: list[Document]) -> None:
    a, b, c = samples
    paras = lambda d: [p for p in d.text.split("\n\n") if len(p.split()) > 12]
    roundup = Document(id="roundup", text="\n\n".join(paras(a)[:2] + paras(c)[:2]))
    corpus = [a, b, c, roundup]
    result = explain(a, roundup, corpus=corpus)
    assert result.same_cluster is False
    if result.is_copy:
        assert "digest" in result.reason


def test_errors_say_what_is_wrong(samples: list[Document]) -> None:
    a, b, _ = samples
    with pytest.raises(DedupError, match="not in the corpus"):
        explain(a, Document(id="zz", text="x"), corpus=[a, b])
    with pytest.raises(DedupError, match="two different articles"):
        explain(a, a)


def test_cli_explain_files_and_corpus_ids(tmp_path) -> None:
    runner = CliRunner()
    files = sorted(SAMPLES.glob("*.txt"))
    out = runner.invoke(main, ["explain", str(files[0]), str(files[1]), "--no-color"])
    assert out.exit_code == 0, out.output
    assert "decision: copy:" in out.stdout and "[[" in out.stdout
    ids = [f.stem for f in files]
    out = runner.invoke(main, ["explain", ids[0], ids[2], "--corpus", str(SAMPLES), "--json"])
    data = json.loads(out.stdout)
    assert data["is_copy"] is False and data["same_cluster"] is False and data["a"] == ids[0]
    out = runner.invoke(main, ["explain", ids[0], "nope", "--corpus", str(SAMPLES)])
    assert out.exit_code == 1 and "'nope' not found in the corpus" in out.stderr
    many = tmp_path / "many.jsonl"
    many.write_text('{"id": "x", "text": "a"}\n{"id": "y", "text": "b"}\n')
    out = runner.invoke(main, ["explain", str(many), str(files[0])])
    assert out.exit_code == 1 and "holds 2 documents" in out.stderr
