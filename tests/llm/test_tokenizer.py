"""The project tokenizer: round trips, single-token digits/symbols, save/load, fingerprints."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hts.errors import ModelError
from hts.hosts import get_host
from llm.encodings import ENCODINGS, encode_answer
from llm.prompts import build_prompt
from llm.tokenizer import (
    ELEMENTS,
    build_tokenizer,
    encode_ids,
    load_tokenizer,
    prompt_ids,
    save_tokenizer,
    token_strings,
    tokenizer_fingerprint,
)
from tests.llm.conftest import configs


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip_prompts_and_answers(tok, host, encoding):
    for cfg in configs(host, 5, 5):
        for text in (build_prompt(host, {"homo": -5.123, "gap": 1.5}, encoding), encode_answer(cfg, encoding)):
            ids = encode_ids(tok, text)
            assert tok.unk_token_id not in ids
            assert tok.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=string.printable, max_size=120))
def test_any_ascii_round_trips_without_unk(text):
    tok = _TOK
    ids = encode_ids(tok, text)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


_TOK = build_tokenizer()


def test_single_tokens(tok):
    pieces = tok.convert_ids_to_tokens(encode_ids(tok, "<defects> 012:VAC 137:Se </defects>"))
    assert pieces == ["<defects>", " 0", "1", "2", ":", "VAC", " 1", "3", "7", ":", "Se", " </defects>"]
    for el in [*ELEMENTS, "VAC"]:
        assert len(encode_ids(tok, el)) == 1 and len(encode_ids(tok, " " + el)) == 1
    assert len(encode_ids(tok, "1234567890")) == 10
    assert tok.convert_ids_to_tokens(encode_ids(tok, "MoSe2")) == ["Mo", "Se", "2"]
    # element symbols are not cut out of words
    assert tok.convert_ids_to_tokens(encode_ids(tok, " Here")) == [" Here"]


def test_special_tokens_and_bos(tok):
    assert tok.bos_token_id is not None and tok.eos_token_id is not None and tok.pad_token_id is not None
    assert tok("Mo")["input_ids"][0] == tok.bos_token_id
    assert prompt_ids(tok, "Mo") == [tok.bos_token_id, *encode_ids(tok, "Mo")]


def test_save_load_fingerprint(tok, tmp_path):
    save_tokenizer(tok, tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert tokenizer_fingerprint(loaded) == tokenizer_fingerprint(tok)
    text = build_prompt(get_host("MoS2", (4, 4, 1)), {"lumo": -3.2}, "sparse")
    assert encode_ids(loaded, text) == encode_ids(tok, text)
    assert tokenizer_fingerprint(build_tokenizer(extra_words=["graphene"])) != tokenizer_fingerprint(tok)
    with pytest.raises(ModelError, match="no tokenizer"):
        load_tokenizer(tmp_path / "missing")


def test_token_strings(tok):
    strings = token_strings(tok)
    assert strings[tok.eos_token_id] is None and strings[tok.pad_token_id] is None
    vocab = tok.get_vocab()
    assert strings[vocab[" VAC"]] == " VAC" and strings[vocab["\n"]] == "\n"
