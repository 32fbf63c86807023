"""The fast batch path (tokenise -> shingle -> signatures) equals plain datasketch MinHash."""

from __future__ import annotations

import numpy as np
from datasketch import LeanMinHash, MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.fingerprint import (
    EMPTY, estimate_jaccard, from_minhash, permutations, reference_minhash, signatures, to_minhash,
)
from dedup.shingle import shingle_batch, shingle_hash, shingles
from dedup.tokenize import tokenize_batch, tokens

from conftest import news_texts

texts = news_texts(max_words=40, max_docs=6)


@settings(max_examples=60, deadline=None)
@given(texts=texts, n=st.integers(1, 5), num_perm=st.sampled_from([16, 64, 128]), seed=st.integers(0, 2**16),
       engine=st.sampled_from(["numpy", "numba"]))
def test_signatures_equal_datasketch(texts: list[str], n: int, num_perm: int, seed: int, engine: str) -> None:
    batch = tokenize_batch([t.lower() for t in texts])
    sigs = signatures(shingle_batch(batch, n=n), num_perm=num_perm, seed=seed, engine=engine)
    for d in range(len(texts)):
        reference = reference_minhash(shingles(batch.doc_tokens(d), n=n), num_perm=num_perm, seed=seed)
        assert np.array_equal(sigs[d], reference.hashvalues)


def test_permutations_equal_datasketch() -> None:
    for num_perm, seed in [(128, 1), (64, 7), (256, 12345)]:
        a, b = permutations(num_perm=num_perm, seed=seed)
        ref = MinHash(num_perm=num_perm, seed=seed).permutations
        assert np.array_equal(a, ref[0]) and np.array_equal(b, ref[1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=6))
def test_scalar_shingle_hash_matches_batch(parts: list[str]) -> None:
    # the scalar reference must agree with the vectorised hashing for any tokens
    toks = [t for p in parts for t in tokens(p.lower())]
    if not toks:
        return
    batch = tokenize_batch([" ".join(toks)])
    got = shingle_batch(batch, n=len(batch.doc_tokens(0))).doc(0)
    assert got.tolist() == [shingle_hash(" ".join(batch.doc_tokens(0)))]


def test_empty_document_has_empty_signature() -> None:
    sigs = signatures(shingle_batch(tokenize_batch(["", "some words here"]), n=3), num_perm=32)
    assert np.all(sigs[0] == EMPTY)
    assert np.array_equal(sigs[0], MinHash(num_perm=32).hashvalues)
    assert not np.all(sigs[1] == EMPTY)


def test_lean_minhash_round_trip_and_jaccard() -> None:
    batch = tokenize_batch(["a b c d e f g h", "a b c d e f x y"])
    sigs = signatures(shingle_batch(batch, n=2), num_perm=128, seed=3)
    lean = to_minhash(sigs[0], seed=3)
    assert isinstance(lean, LeanMinHash)
    assert np.array_equal(from_minhash(lean), sigs[0])
    other = to_minhash(sigs[1], seed=3)
    assert lean.jaccard(other) == estimate_jaccard(sigs[0], sigs[1])
    # datasketch can read back what dedup wrote
    buf = bytearray(lean.bytesize())
    lean.serialize(buf)
    assert np.array_equal(LeanMinHash.deserialize(buf).hashvalues, sigs[0])


def test_tokens_handle_house_style_and_unspaced_scripts() -> None:
    assert tokens("100km") == tokens("100 km") == ["100", "km"]
    assert tokens("u.s.-backed") == tokens("us-backed")
    assert tokens("1,000 people") == ["1000", "people"]
    assert tokens("北京是") == ["北京", "京是"]  # character bigrams
    assert tokens("ภาษาไทย")[0] == "ภา"
