"""llm: text encodings of defected crystals, the instruction dataset, the project's tokenizer, LoRA
fine-tuning, and generation back ends (transformers, vLLM) with constrained decoding.

Importing ``llm`` is cheap: torch, transformers, peft and vllm are imported inside the functions that
need them. The campaign loop uses :class:`llm.generation.Generator` (``generate(requests)``).
"""

from __future__ import annotations

from llm.encodings import ENCODINGS, encode, encode_answer, parse_answer
from llm.generation import GenerationRequest, GenerationResult, Generator, TransformersGenerator
from llm.prompts import build_prompt

__all__ = [
    "ENCODINGS",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "TransformersGenerator",
    "build_prompt",
    "encode",
    "encode_answer",
    "parse_answer",
]
