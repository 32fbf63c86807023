"""Explain why two articles are (or are not) copies: scores, shared passages, decision and reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from dedup.confirm import score_pairs, tfidf_matrix
from dedup.document import Document
from dedup.errors import DedupError
from dedup.pipeline import Options, resolve_options, cluster, confirm, prepare
from dedup.shingle import shingle_sequence


@dataclass(frozen=True)
class Passage:
    """A run of words both articles contain, as positions in each one's normalised token list."""

    text: str
    words: int
    start_a: int
    start_b: int


@dataclass(frozen=True)
class Explanation:
    """Scores, shared passages and the decision for one pair of articles."""

    a: str
    b: str
    jaccard: float
    cosine: float
    containment: float
    numbers: float
    is_copy: bool
    reason: str
    passages: list[Passage]
    same_cluster: bool | None = None  # in the corpus clustering, when a corpus was given
    tokens_a: tuple[str, ...] = ()
    tokens_b: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (without the token lists)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("tokens_a", "tokens_b", "passages")}
        out["passages"] = [p.__dict__ for p in self.passages]
        return out


def _reason(s: dict[str, float], o: Options, copy: bool) -> str:
    """The clause of the confirmation rule that decided, with the numbers."""
    cos, cont, num = s["cosine"], s["containment"], s["numbers"]
    facts = f"numbers agree {num:.2f} >= {o.numbers:.2f}" if num >= o.numbers else f"numbers differ {num:.2f} < {o.numbers:.2f}"
    if s["few_numbers"]:
        facts = "too few numbers to compare"
    if copy:
        if cos >= o.cosine and cont >= o.overlap:
            why = f"cosine {cos:.2f} >= {o.cosine:.2f} with containment {cont:.2f} >= {o.overlap:.2f}"
        elif cos >= o.strong_cosine:
            why = f"cosine {cos:.2f} >= {o.strong_cosine:.2f}"
        else:
            why = f"containment {cont:.2f} >= {o.containment:.2f}"
        return f"copy: {why}; {facts}"
    worded = (cos >= o.cosine and cont >= o.overlap) or cos >= o.strong_cosine or cont >= o.containment
    if worded:
        return f"not a copy: the wording matches but {facts}"
    if cos >= o.cosine:
        return f"not a copy: cosine {cos:.2f} >= {o.cosine:.2f} but only {cont:.2f} < {o.overlap:.2f} of the passages are shared"
    return f"not a copy: cosine {cos:.2f} < {o.cosine:.2f} and containment {cont:.2f} < {o.containment:.2f}"


def shared_passages(tokens_a: Sequence[str], seq_a: np.ndarray, set_b: np.ndarray, tokens_b: Sequence[str], *, n: int, min_words: int) -> list[Passage]:
    """Maximal runs of consecutive shingles of A found in B, longest first, as word passages."""
    mask = np.isin(seq_a, set_b)
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    text_b = " " + " ".join(tokens_b) + " "
    out = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        words = end - start + n - 1
        if words < min_words:
            continue
        text = " ".join(tokens_a[start : start + words])
        where = text_b.find(" " + text + " ")
        out.append(Passage(text=text, words=words, start_a=start, start_b=text_b[:where].count(" ") if where >= 0 else -1))
    return sorted(out, key=lambda p: (-p.words, p.start_a))


def explain(
    a: Document,
    b: Document,
    *,
    corpus: Iterable[Document] | None = None,
    options: Options | None = None,
    min_words: int = 5,
    **settings: object,
) -> Explanation:
    """Score ``a`` against ``b`` as ``dedup cluster`` would and say why they are (not) copies.

    TF-IDF weights come from ``corpus`` when given (it must contain ``a`` and
    ``b``, matched by id), else from the two articles alone. With a corpus,
    ``same_cluster`` tells whether the clustering put them together (the
    digest guard can keep a confirmed pair apart).
    """
    options = resolve_options(options, settings)
    docs = list(corpus) if corpus is not None else [a, b]
    position = {d.id: i for i, d in enumerate(docs)}
    if a.id == b.id:
        raise DedupError(f"both articles have the id {a.id!r}; give two different articles")
    for doc in (a, b):
        if doc.id not in position:
            raise DedupError(f"article {doc.id!r} is not in the corpus; add it or explain without a corpus")
    prepared = prepare(docs, options)
    i, j = position[a.id], position[b.id]
    pair = np.array([[i, j]], dtype=np.int64)
    scores = score_pairs(pair, signatures=prepared.signatures, tfidf=tfidf_matrix(prepared.tokens),
                         shingles=prepared.shingles, tokens=prepared.tokens)
    copy = bool(confirm(scores, options)[0])
    values = {k: float(getattr(scores, k)[0]) for k in ("jaccard", "cosine", "containment", "numbers")}
    values["few_numbers"] = bool(scores.few_numbers[0])
    tokens_a, tokens_b = prepared.tokens.doc_tokens(i), prepared.tokens.doc_tokens(j)
    seq_a = shingle_sequence(prepared.tokens, i, n=options.shingle_size)
    passages = shared_passages(tokens_a, seq_a, prepared.shingles.doc(j), tokens_b, n=options.shingle_size, min_words=min_words)
    same = None
    reason = _reason(values, options, copy)
    if corpus is not None:
        result = cluster(docs, options=options)
        same = result.assignments[a.id] == result.assignments[b.id]
        if copy and not same:
            reason += "; kept apart in the corpus: one of them quotes several stories (a digest)"
        elif not copy and same:
            reason += f"; same story through other copies (cluster {result.assignments[a.id]})"
    return Explanation(
        a=a.id, b=b.id, is_copy=copy, reason=reason, passages=passages, same_cluster=same,
        tokens_a=tuple(tokens_a), tokens_b=tuple(tokens_b),
        **{k: round(v, 4) for k, v in values.items() if k != "few_numbers"},
    )


def highlight(tokens: Sequence[str], passages: Sequence[Passage], *, mark: Callable[[str], str]) -> str:
    """The normalised text of A with the shared passages wrapped by ``mark``."""
    shared = np.zeros(len(tokens), dtype=bool)
    for p in passages:
        shared[p.start_a : p.start_a + p.words] = True
    out, i = [], 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and shared[j] == shared[i]:
            j += 1
        chunk = " ".join(tokens[i:j])
        out.append(mark(chunk) if shared[i] else chunk)
        i = j
    return " ".join(out)


def explain_inputs(
    a: str, b: str, *, corpus: Sequence[str], read: Callable[[tuple[str, ...]], Iterable[Document]], **settings: object
) -> Explanation:
    """:func:`explain` for the CLI: ``a`` and ``b`` are files, or ids in the ``corpus`` inputs."""
    if corpus:
        docs = list(read(tuple(corpus)))
        by_id = {d.id: d for d in docs}
        missing = [x for x in (a, b) if x not in by_id]
        if missing:
            raise DedupError(f"id(s) {', '.join(map(repr, missing))} not found in the corpus ({len(docs)} documents)")
        return explain(by_id[a], by_id[b], corpus=docs, **settings)
    pair = []
    for path in (a, b):
        docs = list(read((path,)))
        if len(docs) != 1:
            raise DedupError(f"{path}: holds {len(docs)} documents; give one article per file, or use --corpus with ids")
        pair.append(docs[0])
    if pair[0].id == pair[1].id:
        pair[1] = Document(id=pair[1].id + " (B)", text=pair[1].text, title=pair[1].title, date=pair[1].date)
    return explain(pair[0], pair[1], **settings)
