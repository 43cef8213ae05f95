"""The project's tokenizer, in Hugging Face format (``tokenizers`` + ``PreTrainedTokenizerFast``).

A closed-vocabulary, GPT-2-style word-level tokenizer built for this domain:

- every digit is one token (as Llama-3's tokenizer treats numbers digit by digit in the study);
- every element symbol, ``VAC`` and the answer tags (``<sites>``, ``</defects>``...) are one token,
  so a ``sparse`` defect ``012:VAC`` is 5 tokens and a ``sites`` site is 1 token;
- the words of the prompt templates are one token each; any other ASCII text falls back to single
  characters, so nothing ASCII is ever unknown (non-ASCII characters map to ``<unk>``);
- a piece may carry one leading space (`` Mo``, `` 0``, `` The``), which halves the token count.

Pre-tokenisation is one regular expression (``Split``), the model is ``WordLevel``, the decoder
``Fuse`` (concatenation), so ``decode(encode(text)) == text`` for ASCII text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
TAGS = ("<sites>", "</sites>", "<defects>", "</defects>")

_ELEMENTS_TEXT = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm "
    "Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No "
    "Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
)
ELEMENTS: tuple[str, ...] = tuple(_ELEMENTS_TEXT.split())

# Words of the prompt templates (llm.prompts, llm.properties) and a few general ones.
_WORDS_TEXT = (
    "Here is a an TMDC material unitcell of size The defects for this are generated based on following "
    "rules type substitution vacancy from to element has properties HOMO LUMO energy band gap formation "
    "per atom Fermi level Generate in the crystal structure types substitutional You only allowed change "
    "symbol case replace it with without changing anything else Crystal Sites Defects Write every site "
    "fixed order List changed sites as index and new increasing defect sites"
)
WORDS: tuple[str, ...] = tuple(_WORDS_TEXT.split())

TOKENIZER_VERSION = 1


def _pre_tokenizer_regex(words: list[str]) -> str:
    tags = "|".join(re.escape(t) for t in TAGS)
    word_alt = "|".join(sorted(set(words), key=lambda w: (-len(w), w)))
    two_letter = "|".join(sorted(e for e in ELEMENTS if len(e) == 2))
    punct = re.escape(string.punctuation)
    return (
        rf" ?(?:{tags})| ?VAC| ?\b(?:{word_alt})\b| ?(?:{two_letter})(?![a-z])"
        rf"| ?[A-Za-z]| ?\d| ?[{punct}]|\s"
    )


def _vocab(words: list[str]) -> dict[str, int]:
    pieces = [*TAGS, "VAC", *ELEMENTS, *words, *string.ascii_letters, *string.digits, *string.punctuation]
    vocab: dict[str, int] = {}
    for tok in SPECIAL_TOKENS:
        vocab.setdefault(tok, len(vocab))
    for ws in ("\n", " ", "\t", "\r", "\x0b", "\x0c"):
        vocab.setdefault(ws, len(vocab))
    for p in pieces:
        vocab.setdefault(p, len(vocab))
        vocab.setdefault(" " + p, len(vocab))
    return vocab


def build_tokenizer(extra_words: list[str] | None = None, model_max_length: int = 16384) -> Any:
    """The project's tokenizer as a ``PreTrainedTokenizerFast`` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(WORDS) | set(extra_words or []))
    bad = [w for w in words if not re.fullmatch(r"[A-Za-z]+", w)]
    if bad:
        raise ValueError(f"tokenizer words must be ASCII letters only: {bad}")
    tok = Tokenizer(models.WordLevel(vocab=_vocab(words), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_pre_tokenizer_regex(words)), behavior="isolated")
    tok.decoder = decoders.Fuse()
    vocab = tok.get_vocab()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.init_kwargs["hts_tokenizer_version"] = TOKENIZER_VERSION
    return fast


def save_tokenizer(tokenizer: Any, path: str | Path) -> Path:
    """Save in Hugging Face format (``tokenizer.json`` + ``tokenizer_config.json``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(path))
    return path


def load_tokenizer(path: str | Path) -> Any:
    """Load any Hugging Face tokenizer directory (ours or a model's), left padding."""
    from transformers import AutoTokenizer

    from hts.errors import ModelError

    path = Path(path)
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise ModelError(f"{path} holds no tokenizer (tokenizer.json); build one with `hts llm tokenizer`")
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """16-hex-digit fingerprint of a tokenizer's vocabulary, special tokens and pre-tokeniser.

    Recorded in every model and adapter directory; a mismatch means ids would mean other text.
    """
    h = hashlib.sha256()
    h.update(json.dumps(sorted(tokenizer.get_vocab().items()), separators=(",", ":")).encode())
    h.update(json.dumps([tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token]).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        pre = json.loads(backend.to_str()).get("pre_tokenizer")
        h.update(json.dumps(pre, sort_keys=True).encode())
    return h.hexdigest()[:16]


def is_project_tokenizer(tokenizer: Any) -> bool:
    """True for tokenizers built by :func:`build_tokenizer` (vocabulary entries are literal text)."""
    vocab = tokenizer.get_vocab()
    return all(t in vocab for t in ("<defects>", " VAC", " 0", "</sites>"))


def token_strings(tokenizer: Any) -> list[str | None]:
    """The text every token id stands for (``None`` for special tokens and non-text pieces).

    Handles the project's tokenizer (literal pieces), byte-level BPE (GPT-2, Llama-3: ``Ġ`` = space)
    and SentencePiece (``▁`` = space, ``<0x0A>`` byte tokens).
    """
    vocab = tokenizer.get_vocab()
    n = max(max(vocab.values()) + 1, len(tokenizer))
    out: list[str | None] = [None] * n
    special = set(tokenizer.all_special_ids)
    pieces = list(vocab)
    byte_level = sum(("Ġ" in p or "Ċ" in p) for p in pieces[:5000]) > 10
    sentencepiece = not byte_level and sum(p.startswith("▁") for p in pieces[:5000]) > 10
    byte_decoder: dict[str, int] = {}
    if byte_level:
        byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}
    for piece, i in vocab.items():
        if i in special:
            continue
        if byte_level:
            try:
                out[i] = bytes(byte_decoder[c] for c in piece).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                out[i] = None
        elif sentencepiece:
            m = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)
            if m:
                b = int(m.group(1), 16)
                out[i] = chr(b) if b < 128 else None
            else:
                out[i] = piece.replace("▁", " ")
        else:
            out[i] = piece
    return out


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def encode_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Ids of a prompt as the model sees it: BOS (when the tokenizer has one) + the prompt."""
    ids = encode_ids(tokenizer, prompt)
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids
