"""Fixtures of the llm tests: the project tokenizer, a tiny random 2-layer Llama, a 4x4 MoS2 host."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hts.defects import DefectConfiguration
from hts.hosts import Host, get_host
from llm.sampling import random_configuration


@pytest.fixture(scope="session")
def host() -> Host:
    return get_host("MoS2", (4, 4, 1))


@pytest.fixture(scope="session")
def tok():
    from llm.tokenizer import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tok):
    import torch

    from llm.model import new_model

    torch.set_num_threads(1)
    model = new_model(tok, "test", seed=0, max_positions=2048)
    model.eval()
    return model


def configs(host: Host, seed: int, n: int, max_defects: int = 6) -> list[DefectConfiguration]:
    """``n`` random configurations (the first pristine) with up to ``max_defects`` defects."""
    rng = np.random.default_rng(seed)
    out = [DefectConfiguration.pristine(host)]
    out += [random_configuration(host, int(rng.integers(1, max_defects + 1)), rng) for _ in range(n - 1)]
    return out


def random_token_walks(tok: Any, host: Host, encoding: str, max_defects: int, walks: int, seed: int) -> list[list[int]]:
    """``walks`` random walks of constrained decoding with tokenizer ``tok`` (1 to ``max_defects``
    defects): at each step one token drawn uniformly from those the constraint allows, until EOS.
    Returns the token ids of each walk, EOS left out; every allowed token must lead somewhere."""
    from llm.constraints import TokenConstraint, TokenTrie, make_automaton
    from llm.tokenizer import token_strings

    automaton = make_automaton(host, encoding, max_defects=max_defects, min_defects=1)
    tc = TokenConstraint(automaton, TokenTrie(token_strings(tok)), tok.eos_token_id)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(walks):
        state, ids = tc.automaton.start(), []
        while True:
            allowed = tc.allowed(state)
            assert allowed.size
            t = int(allowed[int(rng.integers(allowed.size))])
            if t == tok.eos_token_id:
                break
            state = tc.advance(state, t)
            assert state is not None
            ids.append(t)
        out.append(ids)
    return out
