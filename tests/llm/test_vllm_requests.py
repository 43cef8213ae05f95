"""vLLM request building (no vllm needed) and, marked ``vllm``, a real run on a GPU."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hts.hosts import get_host
from llm.constraints import accepts, make_automaton
from llm.encodings import ENCODINGS, encode_answer
from llm.generation import GenerationRequest
from llm.sampling import random_configuration
from llm.vllm_backend import (
    answer_regex,
    budget_grammar,
    llm_kwargs,
    lora_request_kwargs,
    prompt_inputs,
    sampling_params_kwargs,
    vllm_available,
)
from tests.llm.conftest import configs


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", ["MoS2", "GaSe"])
def test_regex_matches_valid_answers_only(encoding, name):
    h = get_host(name, (3, 3, 1))
    rx = re.compile(answer_regex(h, encoding, max_defects=4, min_defects=1))
    for cfg in configs(h, 4, 10, max_defects=4)[1:]:
        assert rx.fullmatch(encode_answer(cfg, encoding))
    good = configs(h, 5, 2, max_defects=3)[1]
    text = encode_answer(good, encoding)
    site, species = good.defects[0]
    wrong = next(e for e in h.elements if e != h.site_species[site])
    if encoding == "sparse":
        assert not rx.fullmatch(text.replace(f":{species}", f":{wrong}", 1))
        assert not rx.fullmatch(encode_answer(configs(h, 0, 1)[0], encoding))  # below min_defects
        assert not rx.fullmatch(encode_answer(random_configuration(h, 5, np.random.default_rng(0)), encoding))
    else:
        symbols = encode_answer(good, "sites").split()[1:-1]
        symbols[site] = wrong
        bad = " ".join(symbols) if encoding == "sites" else None
        if bad is not None:
            assert not rx.fullmatch(f"<sites> {bad} </sites>")
        else:
            lines = text.splitlines(keepends=True)
            lines[site] = wrong + lines[site][len(species) :]
            assert not rx.fullmatch("".join(lines))
            lines = text.splitlines(keepends=True)
            lines[0] = lines[0].replace("0.", "1.", 1)  # coordinates are copied exactly
            assert not rx.fullmatch("".join(lines))


def test_budget_grammar_is_right_linear_and_complete():
    h = get_host("MoS2", (2, 2, 1))
    g = budget_grammar(h, "sites", max_defects=2, min_defects=1)
    assert g.startswith('root ::= "<sites>" s0_0\n')
    assert "s11_2" in g and "s11_3" not in g and g.rstrip().endswith('" </sites>"')
    lang = _grammar_language(g, "root")
    automaton = make_automaton(h, "sites", max_defects=2, min_defects=1)
    assert all(accepts(automaton, text) for text in lang)
    # exactly the answers with 1 or 2 defects: 12 sites, 2 options each -> 12*2 + C(12,2)*4
    assert len(lang) == 12 * 2 + 66 * 4
    gc = budget_grammar(h, "cif", max_defects=1)
    assert '"W 0.1667 0.3333 0.2500\\n"' in gc


def test_sampling_params_and_lora_kwargs(host, tok):
    req = GenerationRequest(host, {"gap": 1.1}, n=8, temperature=0.7, top_p=0.95, max_defects=3, seed=5)
    kw = sampling_params_kwargs(req, host, "sparse")
    assert kw["n"] == 8 and kw["temperature"] == 0.7 and kw["top_p"] == 0.95 and kw["seed"] == 5
    assert kw["max_tokens"] > 0 and re.compile(kw["structured_outputs"]["regex"])
    free = sampling_params_kwargs(GenerationRequest(host, constrained=False), host, "cif")
    assert "structured_outputs" not in free
    assert lora_request_kwargs("/a", "x", 3) == {"lora_name": "x", "lora_int_id": 3, "lora_path": "/a"}
    assert llm_kwargs("/m", "/a")["enable_lora"] is True and "enable_lora" not in llm_kwargs("/m")
    (inp,) = prompt_inputs(tok, [req.prompt("sparse")])
    assert inp["prompt_token_ids"][0] == tok.bos_token_id


def test_composition_request_regex_and_result_check(host):
    """An exact composition through vLLM: the regex gets the total and only the counted types, and
    parsed answers with other counts per type are marked invalid afterwards."""
    from llm.generation import parse_result

    req = GenerationRequest(host, {}, n=4, composition={"vac_S": 1, "Mo->W": 2})
    pattern = re.compile(sampling_params_kwargs(req, host, "sparse")["structured_outputs"]["regex"])
    mo, s = host.sites_of("Mo"), host.sites_of("S")
    w = len(str(host.n_sites - 1))
    good = f"<defects> {mo[0]:0{w}d}:W {mo[1]:0{w}d}:W {s[0]:0{w}d}:VAC </defects>"
    wrong_counts = f"<defects> {mo[0]:0{w}d}:W {s[0]:0{w}d}:VAC {s[1]:0{w}d}:VAC </defects>"
    other_type = f"<defects> {mo[0]:0{w}d}:W {mo[1]:0{w}d}:W {s[0]:0{w}d}:Se </defects>"
    too_few = f"<defects> {mo[0]:0{w}d}:W {s[0]:0{w}d}:VAC </defects>"
    assert pattern.fullmatch(good) and pattern.fullmatch(wrong_counts)  # the regex cannot count per type
    assert not pattern.fullmatch(other_type) and not pattern.fullmatch(too_few)
    assert parse_result(0, good, host, "sparse", 0, req.composition).valid
    bad = parse_result(0, wrong_counts, host, "sparse", 0, req.composition)
    assert not bad.valid and "composition" in (bad.error or "")


def _grammar_language(grammar: str, start: str) -> set[str]:
    """All strings of a small right-linear grammar written by budget_grammar."""
    rules = {}
    for line in grammar.strip().splitlines():
        name, body = line.split(" ::= ")
        rules[name] = [alt.strip() for alt in body.split(" | ")]

    def expand(symbol: str) -> set[str]:
        out = set()
        for alt in rules[symbol]:
            m = re.fullmatch(r'(?:"((?:[^"\\]|\\.)*)")?\s*(\w+)?(?:\s*"((?:[^"\\]|\\.)*)")?', alt)
            assert m, alt
            lit, nxt, tail = m.group(1) or "", m.group(2), m.group(3) or ""
            rest = expand(nxt) if nxt else {""}
            out |= {lit + r + tail for r in rest}
        return out

    return expand(start)


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_available(), reason="vllm is not installed")
def test_vllm_generates_valid_samples(tmp_path, host):  # pragma: no cover - GPU only
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    from llm.model import ModelManifest, new_model, save_model
    from llm.tokenizer import build_tokenizer, tokenizer_fingerprint
    from llm.vllm_backend import VLLMGenerator

    tok = build_tokenizer()
    save_model(
        new_model(tok, "test"),
        tok,
        tmp_path / "m",
        ModelManifest(kind="base", tokenizer_fingerprint=tokenizer_fingerprint(tok)),
    )
    gen = VLLMGenerator(str(tmp_path / "m"), encoding="sites", host=host, gpu_memory_utilization=0.3)
    res = gen.generate([GenerationRequest(host, {"gap": 1.0}, n=8, max_defects=4)])
    assert all(r.valid for r in res)
