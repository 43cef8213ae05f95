"""Constrained decoding with a foreign byte-level BPE tokenizer (the Llama-3 kind): multi-character
tokens that span symbols, spaces and coordinates must still only spell valid answers."""

from __future__ import annotations

import pytest

from llm.encodings import ENCODINGS, encode_answer, parse_answer
from llm.generation import GenerationRequest, TransformersGenerator, canonical_forbidden
from llm.prompts import build_prompt
from llm.tokenizer import token_strings
from tests.llm.conftest import configs, random_token_walks


@pytest.fixture(scope="module")
def bpe(host):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [encode_answer(c, e) for c in configs(host, 30, 30) for e in ENCODINGS]
    corpus += [build_prompt(host, {"homo": -5.0}, e) for e in ENCODINGS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|begin|>", "<|end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin|>", eos_token="<|end|>", pad_token="<|end|>"
    )


def test_token_strings_decode_byte_level(bpe):
    strings = token_strings(bpe)
    assert canonical_forbidden(bpe) == frozenset()
    multi = [s for s in strings if s and len(s) > 3]
    assert multi  # merges exist, e.g. "0.0833" pieces or " VAC"
    for i, s in enumerate(strings[:200]):
        if s is not None:
            assert bpe.decode([i]) == s


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_random_walks_with_bpe_parse(bpe, host, encoding):
    for ids in random_token_walks(bpe, host, encoding, max_defects=5, walks=5 if encoding == "cif" else 20, seed=0):
        assert 1 <= parse_answer(bpe.decode(ids), host, encoding).n_defects <= 5


def test_generation_with_foreign_model(bpe, host):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(bpe),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=bpe.bos_token_id,
        eos_token_id=bpe.eos_token_id,
        pad_token_id=bpe.pad_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    gen = TransformersGenerator(model, bpe, "sparse")
    res = gen.generate([GenerationRequest(host, {"homo": -5.0}, n=8, max_defects=4, seed=0)])
    assert all(r.valid for r in res), [r.error for r in res]
