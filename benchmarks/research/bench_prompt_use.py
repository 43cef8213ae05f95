"""Does a fine-tuned generator read the property in its prompt? Answer loss with true vs shuffled values.

For validation examples of an instruction set that condition on ``--property``, the mean answer loss
(per token) is computed three ways: with the example's own value in a one-property prompt, with the
values shuffled between examples, and with no property at all. A model that uses the prompt has a
clearly lower loss with the true values than with shuffled ones; equal losses mean it ignores them.

Run:
    .venv/bin/python benchmarks/research/bench_prompt_use.py --adapter models/llm-lora --data runs/instructions
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=None, help="base model folder (default: the embedded default, hts.settings)")
    ap.add_argument("--adapter", default=None, help="adapter folder (none: the base alone)")
    ap.add_argument("--data", type=Path, required=True, help="instruction set folder (val.jsonl)")
    ap.add_argument("--property", default="homo_lumo_gap")
    ap.add_argument("--n", type=int, default=300, help="validation examples used")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from hts.hosts import host_from_key
    from hts.settings import default_model
    from llm.dataset import read_jsonl
    from llm.model import load_with_adapter
    from llm.prompts import build_prompt
    from llm.train import evaluate_loss, tokenize_pairs

    torch.set_num_threads(1)
    model, tok, _ = load_with_adapter(args.base or str(default_model("base_model")), args.adapter)
    val = [e for e in read_jsonl(args.data / "val.jsonl", "val") if args.property in e.targets][: args.n]
    if not val:
        raise SystemExit(f"no validation example of {args.data} conditions on {args.property}")
    host_of = {e.host: host_from_key(e.host) for e in val}
    values = [e.targets[args.property] for e in val]
    shuffled = values[:]
    random.Random(args.seed).shuffle(shuffled)

    def loss(prompt_values: list[float | None]) -> float:
        pairs = [
            (build_prompt(host_of[e.host], {} if v is None else {args.property: v}, e.encoding), e.answer)
            for e, v in zip(val, prompt_values, strict=True)
        ]
        return float(evaluate_loss(model, tokenize_pairs(tok, pairs, 1024, False), tok.pad_token_id, 32))

    out = {
        "adapter": args.adapter,
        "property": args.property,
        "examples": len(val),
        "loss_true": loss(list(values)),
        "loss_shuffled": loss(list(shuffled)),
        "loss_none": loss([None] * len(val)),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
