"""Generation with a tiny random 2-layer Llama: constrained samples always parse, free ones do not."""

from __future__ import annotations

import pytest

from hts.errors import ConfigError
from llm.encodings import ENCODINGS
from llm.generation import GenerationRequest, Generator, TransformersGenerator, generate_for_targets


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_constrained_always_parses_unconstrained_fails(tiny_model, tok, host, encoding):
    gen = TransformersGenerator(tiny_model, tok, encoding, batch_size=8)
    assert isinstance(gen, Generator)
    n = 6 if encoding == "cif" else 16  # cif: ~1000 tokens per sample on a 4x4 cell
    reqs = [
        GenerationRequest(host, {"homo_lumo_gap": 1.2}, n=n, max_defects=4, seed=0, temperature=1.5, top_p=0.9),
        GenerationRequest(host, {"homo_lumo_gap": 1.2}, n=n, max_defects=4, seed=0, constrained=False),
    ]
    if encoding != "cif":
        reqs.insert(0, GenerationRequest(host, {}, n=n, max_defects=4, seed=1))
    results = gen.generate(reqs)
    last = len(reqs) - 1
    assert [r.request_index for r in results] == [i for i in range(len(reqs)) for _ in range(n)]
    constrained = [r for r in results if r.request_index < last]
    assert all(r.valid for r in constrained), [r.error for r in constrained if not r.valid]
    assert all(1 <= r.config.n_defects <= 4 for r in constrained)
    assert len({r.config for r in constrained}) > 1  # it samples
    free = [r for r in results if r.request_index == last]
    assert sum(r.valid for r in free) < len(free)  # the same model without constraints fails
    assert all(r.error for r in free if not r.valid)
    assert gen.last_stats["samples"] == len(reqs) * n


def test_seeded_generation_is_reproducible(tiny_model, tok, host):
    gen = TransformersGenerator(tiny_model, tok, "sparse")
    a = generate_for_targets(gen, host, {"homo": -5.0}, 6, seed=3, max_defects=3)
    b = generate_for_targets(gen, host, {"homo": -5.0}, 6, seed=3, max_defects=3)
    assert [r.text for r in a] == [r.text for r in b]


def test_request_validation(host):
    with pytest.raises(ConfigError):
        GenerationRequest(host, n=0)
    with pytest.raises(ConfigError):
        GenerationRequest(host, temperature=0)
    with pytest.raises(ConfigError, match="unknown property"):
        GenerationRequest(host, {"colour": 1.0})
    assert GenerationRequest(host, {"gap": 1.0}).targets == {"homo_lumo_gap": 1.0}


def test_random_generator_is_a_generator(host):
    from llm.sampling import RandomGenerator

    gen = RandomGenerator(seed=0)
    assert isinstance(gen, Generator)
    res = gen.generate([GenerationRequest(host, n=20, max_defects=3), GenerationRequest(host, n=5, min_defects=2)])
    assert len(res) == 25 and all(r.valid for r in res)
    assert all(1 <= r.config.n_defects <= 3 for r in res[:20])
    assert all(r.config.n_defects >= 2 for r in res[20:])


def test_requests_share_batches_across_hosts(tiny_model, tok, host):
    from hts.hosts import get_host

    other = get_host("WSe2", (3, 3, 1))
    gen = TransformersGenerator(tiny_model, tok, "sparse", batch_size=16)
    reqs = [
        GenerationRequest(host, {"homo": -5.0}, n=5, max_defects=2, seed=4),
        GenerationRequest(other, {"lumo": -3.0, "fermi_level": -4.0}, n=7, max_defects=3),
        GenerationRequest(host, {}, n=3, max_defects=1, min_defects=1),
    ]
    res = gen.generate(reqs)
    assert [r.request_index for r in res] == [0] * 5 + [1] * 7 + [2] * 3
    assert all(r.valid for r in res)
    assert all(r.config.host == reqs[r.request_index].host for r in res)
    assert all(r.config.n_defects <= reqs[r.request_index].max_defects for r in res)
    assert [r.text for r in gen.generate(reqs)] == [r.text for r in res]  # seeded call: reproducible


def test_narrower_rules_are_enforced(tiny_model, tok, host):
    from hts.errors import ConfigError
    from llm.vllm_backend import answer_regex

    allowed = host.allowed.copy()
    allowed[:, host.code_of("VAC")] = False  # substitutions only
    gen = TransformersGenerator(tiny_model, tok, "sparse")
    res = gen.generate([GenerationRequest(host, {}, n=16, max_defects=4, seed=0, allowed=allowed)])
    assert all(r.valid for r in res)
    assert all(sp != "VAC" for r in res for _, sp in r.config.defects)
    assert "VAC" not in answer_regex(host, "sparse", 4, 1, allowed)
    wider = host.allowed.copy()
    wider[0, host.code_of("Se")] = True  # Mo site -> Se: not a rule of MoS2
    with pytest.raises(ConfigError, match="forbid"):
        GenerationRequest(host, allowed=wider)


def test_composition_requests_generate_exactly_the_composition(tiny_model, tok, host):
    """The tiny random Llama under a composition constraint: every sample parses and has exactly the
    requested counts per type; unconstrained samples of the same model do not."""
    from llm.generation import type_counts

    gen = TransformersGenerator(tiny_model, tok, "sparse", batch_size=8)
    want = {"vac_S": 2, "Mo->W": 1}
    res = generate_for_targets(gen, host, {"homo_lumo_gap": 1.0}, n=8, composition=want, seed=0)
    assert all(r.valid for r in res) and all(type_counts(r.config) == want for r in res)  # type: ignore[arg-type]
    free = generate_for_targets(gen, host, {}, n=8, composition=want, seed=0, constrained=False)
    assert not all(r.valid for r in free)


def test_constraint_cache_is_bounded(tiny_model, tok, host):
    from llm.generation import MAX_CACHED_CONSTRAINTS

    gen = TransformersGenerator(tiny_model, tok, "sparse")
    for k in range(1, 40):
        for lo in (0, 1):
            gen.constraint(host, k, lo)
    assert len(gen._constraints) == MAX_CACHED_CONSTRAINTS
    assert gen.constraint(host, 39, 1) is gen.constraint(host, 39, 1)  # the recent ones stay cached
