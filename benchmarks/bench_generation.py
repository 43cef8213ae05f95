"""Benchmark of the LLM generator: tokens per crystal per encoding, crystals/s, validity.

For each encoding: prompt and answer length in tokens (the project's tokenizer, canonical answers of
random configurations), then sampling with a randomly initialised Llama of a preset on the
transformers back end, constrained and unconstrained (validity = parse rate). A random model is the
honest worst case for validity; speed depends only on the architecture and answer length.

    python benchmarks/bench_generation.py --host MoS2 --supercell 8x8 --preset small --n 8 \
        --out benchmarks/results/generation.json

Prints a table and writes JSON (settings, machine, results).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="MoS2")
    ap.add_argument("--supercell", default="8x8")
    ap.add_argument("--preset", default="test", help="test, tiny, small, base")
    ap.add_argument("--n", type=int, default=8, help="samples per encoding and mode")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-defects", type=int, default=8)
    ap.add_argument("--encodings", default="sparse,sites,cif")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from hts.hosts import get_host
    from llm.encodings import encode_answer
    from llm.generation import GenerationRequest, TransformersGenerator
    from llm.model import new_model
    from llm.prompts import build_prompt
    from llm.sampling import random_configurations
    from llm.tokenizer import build_tokenizer, encode_ids, prompt_ids

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    cell = tuple(int(x) for x in args.supercell.lower().split("x"))
    host = get_host(args.host, (*cell[:2], 1))
    tok = build_tokenizer()
    model = new_model(tok, args.preset, seed=args.seed, max_positions=8192).to(args.device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(args.seed)
    sample_cfgs = random_configurations(host, 50, args.max_defects, rng)
    targets = {"homo_lumo_gap": 1.2, "formation_energy": 5.0}
    rows = []
    for enc in args.encodings.split(","):
        ans = [len(encode_ids(tok, encode_answer(c, enc))) for c in sample_cfgs]
        prompt_len = len(prompt_ids(tok, build_prompt(host, targets, enc)))
        gen = TransformersGenerator(model, tok, enc, batch_size=args.batch_size, device=args.device)
        for constrained in (True, False):
            req = GenerationRequest(
                host, targets, n=args.n, max_defects=args.max_defects, constrained=constrained, seed=args.seed
            )
            t0 = time.perf_counter()
            res = gen.generate([req])
            dt = time.perf_counter() - t0
            n_tok = sum(r.n_tokens for r in res)
            rows.append(
                {
                    "encoding": enc,
                    "constrained": constrained,
                    "prompt_tokens": prompt_len,
                    "answer_tokens_mean": float(np.mean(ans)),
                    "answer_tokens_max": int(np.max(ans)),
                    "samples": len(res),
                    "valid": sum(r.valid for r in res),
                    "validity": sum(r.valid for r in res) / len(res),
                    "seconds": dt,
                    "crystals_per_s": len(res) / dt,
                    "generated_tokens_per_s": n_tok / dt,
                }
            )
    header = f"{'encoding':8} {'constr':6} {'prompt':>6} {'answer':>8} {'valid':>7} {'crystals/s':>10} {'tok/s':>8}"
    print(
        f"{host.key}, preset {args.preset} ({n_params / 1e6:.2f} M parameters), {args.device}, "
        f"{args.threads} thread(s), max_defects {args.max_defects}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['encoding']:8} {'yes' if r['constrained'] else 'no':6} {r['prompt_tokens']:6d} "
            f"{r['answer_tokens_mean']:8.1f} {r['valid']:3d}/{r['samples']:<3d} {r['crystals_per_s']:10.2f} "
            f"{r['generated_tokens_per_s']:8.0f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        machine = {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "cpu_threads": args.threads,
        }
        args.out.write_text(
            json.dumps(
                {
                    "settings": vars(args) | {"out": str(args.out)},
                    "machine": machine,
                    "parameters": n_params,
                    "results": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
