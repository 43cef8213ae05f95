"""Constrained decoding automata and their token-level walk."""

from __future__ import annotations

import numpy as np
import pytest

from hts.errors import ConfigError
from hts.hosts import get_host
from llm.constraints import TokenConstraint, TokenTrie, accepts, make_automaton
from llm.encodings import ENCODINGS, encode_answer, parse_answer
from llm.sampling import random_configuration
from llm.tokenizer import encode_ids, token_strings
from tests.llm.conftest import configs, random_token_walks


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_automaton_accepts_exactly_the_budget(host, encoding):
    a = make_automaton(host, encoding, max_defects=5, min_defects=1)
    rng = np.random.default_rng(0)
    for k in range(1, 6):
        assert accepts(a, encode_answer(random_configuration(host, k, rng), encoding))
    assert not accepts(a, encode_answer(random_configuration(host, 6, rng), encoding))
    assert not accepts(a, encode_answer(configs(host, 0, 1)[0], encoding))  # pristine: below min_defects
    assert accepts(make_automaton(host, encoding), encode_answer(configs(host, 0, 1)[0], encoding))
    text = encode_answer(random_configuration(host, 3, rng), encoding)
    assert not accepts(a, text[:-1])  # incomplete
    assert not accepts(a, text + " ")


def test_sparse_automaton_enforces_order_and_species(host):
    a = make_automaton(host, "sparse")
    assert accepts(a, "<defects> 03:W 20:VAC </defects>")
    assert not accepts(a, "<defects> 20:VAC 03:W </defects>")  # decreasing
    assert not accepts(a, "<defects> 03:W 03:VAC </defects>")  # twice
    assert not accepts(a, "<defects> 03:Se </defects>")  # Mo site cannot become Se
    assert not accepts(a, "<defects> 48:Se </defects>")  # out of range
    # sites leave room for min_defects: with 2 required, the last site cannot come first
    b = make_automaton(host, "sparse", min_defects=2)
    state = b.start()
    for ch in "<defects> 4":
        state = b.step(state, ch)
    assert "7" not in set(b.next_chars(state))


def test_impossible_budget(host):
    with pytest.raises(ConfigError, match="min_defects"):
        make_automaton(host, "sparse", max_defects=1, min_defects=2)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", ["MoS2", "GaSe"])
def test_random_character_walks_always_parse(encoding, name):
    h = get_host(name, (2, 2, 1) if encoding == "cif" else (3, 3, 1))
    a = make_automaton(h, encoding, max_defects=4, min_defects=1)
    rng = np.random.default_rng(1)
    for _ in range(30):
        state, text = a.start(), ""
        while not a.is_final(state):
            chars = sorted(a.next_chars(state))
            assert chars, (state, text)
            ch = chars[int(rng.integers(len(chars)))]
            state = a.step(state, ch)
            text += ch
        cfg = parse_answer(text, h, encoding)
        assert 1 <= cfg.n_defects <= 4


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_random_token_walks_always_parse(tok, host, encoding):
    for ids in random_token_walks(tok, host, encoding, max_defects=6, walks=10 if encoding == "cif" else 30, seed=2):
        assert 1 <= parse_answer(tok.decode(ids), host, encoding).n_defects <= 6


def test_canonical_tokens_allowed_and_eos_only_at_the_end(tok, host):
    tc = TokenConstraint(make_automaton(host, "sparse"), TokenTrie(token_strings(tok)), tok.eos_token_id)
    text = "<defects> 03:W 20:VAC </defects>"
    state = tc.automaton.start()
    for t in encode_ids(tok, text):
        allowed = tc.allowed(state)
        assert t in allowed and tok.eos_token_id not in allowed
        state = tc.advance(state, t)
    assert list(tc.allowed(state)) == [tok.eos_token_id]
    assert tc.advance(tc.automaton.start(), tok.get_vocab()[" VAC"]) is None


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_canonical_walks_match_the_encoder_token_count(tok, host, encoding):
    """With lone spaces forbidden (project tokenizer), every constrained path is the canonical one."""
    from llm.generation import canonical_forbidden

    tc = TokenConstraint(
        make_automaton(host, encoding, max_defects=6, min_defects=1),
        TokenTrie(token_strings(tok)),
        tok.eos_token_id,
        canonical_forbidden(tok),
    )
    rng = np.random.default_rng(3)
    for _ in range(3 if encoding == "cif" else 20):
        state, ids = tc.automaton.start(), []
        while True:
            allowed = tc.allowed(state)
            t = int(allowed[int(rng.integers(allowed.size))])
            if t == tok.eos_token_id:
                break
            state = tc.advance(state, t)
            ids.append(t)
        cfg = parse_answer(tok.decode(ids), host, encoding)
        assert ids == encode_ids(tok, encode_answer(cfg, encoding))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", ["MoS2", "GaSe"])
def test_composition_walks_always_have_the_composition(encoding, name):
    """Exact counts per defect type: every random walk ends, parses, and has exactly the counts; a
    budget automaton walked the same way does not (the check can fail)."""
    from llm.constraints import composition_counts
    from llm.generation import type_counts

    h = get_host(name, (2, 2, 1) if encoding == "cif" else (3, 3, 1))
    rules = [r.name for r in h.rules]
    quotas = composition_counts(h, {rules[0]: 1, rules[1]: 2, rules[-1]: 1})
    expected = {r: quotas[i] for i, r in enumerate(rules) if quotas[i]}
    exact = make_automaton(h, encoding, composition=quotas)
    free = make_automaton(h, encoding, max_defects=sum(quotas), min_defects=1)
    rng = np.random.default_rng(3)
    misses = 0
    for automaton in (exact, free):
        for _ in range(20):
            state, text = automaton.start(), ""
            while not automaton.is_final(state):
                chars = sorted(automaton.next_chars(state))
                assert chars, (state, text)  # never a dead end
                ch = chars[int(rng.integers(len(chars)))]
                state = automaton.step(state, ch)
                assert state is not None
                text += ch
            counts = type_counts(parse_answer(text, h, encoding))
            if automaton is exact:
                assert counts == expected, text
            else:
                misses += counts != expected
    assert misses > 0


def test_composition_errors():
    from llm.constraints import composition_counts

    h = get_host("MoS2", (3, 3, 1))
    with pytest.raises(ConfigError, match="does not have"):
        composition_counts(h, {"vac_X": 1})
    with pytest.raises(ConfigError, match="whole number"):
        composition_counts(h, {"vac_S": -1})
    with pytest.raises(ConfigError, match="whole number"):
        composition_counts(h, {"vac_S": "two"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="at least one defect"):
        composition_counts(h, {"vac_S": 0})
    with pytest.raises(ConfigError):  # more Mo defects than the 9 Mo sites
        make_automaton(h, "sparse", composition=composition_counts(h, {"vac_Mo": 5, "Mo->W": 5}))
    no_w = h.allowed.copy()
    no_w[:, h.code_of("W")] = False
    with pytest.raises(ConfigError, match="not allowed"):
        make_automaton(h, "sparse", allowed=no_w, composition=composition_counts(h, {"Mo->W": 1}))
