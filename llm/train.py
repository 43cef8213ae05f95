"""Training: pretraining the embedded Llama on unconditional encodings, LoRA fine-tuning on instructions.

One small loop (AdamW, linear warm-up then cosine decay, gradient clipping) serves both. It writes
checkpoints to ``<out>/checkpoints/step-NNNNNNN/`` (trainable weights as safetensors, optimizer and
RNG state loaded back with ``torch.load(weights_only=True)``, ``state.json`` written last as the
commit mark), keeps the last few, and resumes from the newest complete one: the data order of each
epoch is a function of the seed and the epoch, so a resumed run sees the same batches. A resume with
different settings (seed, batch size, learning rate, data) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, ModelError
from llm.encodings import check_encoding, encode_answer
from llm.prompts import build_prompt

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainConfig:
    """Optimisation settings (recorded in checkpoints and manifests)."""

    max_steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_length: int = 1024
    seed: int = 0
    save_every: int = 200
    eval_every: int = 200
    log_every: int = 20
    keep_checkpoints: int = 2

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(self.max_steps - self.warmup_steps, 1)
        t = min((step - self.warmup_steps) / span, 1.0)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


# Settings that must not change when a run is resumed (max_steps, intervals may).
_FIXED_ON_RESUME = (
    "batch_size",
    "lr",
    "min_lr_ratio",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "max_length",
    "seed",
)


def tokenize_pairs(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int, loss_on_prompt: bool
) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per ``(prompt, answer)``: BOS + prompt + answer + EOS; labels -100 on the
    prompt unless ``loss_on_prompt``. Examples longer than ``max_length`` are refused."""
    from llm.tokenizer import encode_ids, prompt_ids

    out = []
    for prompt, answer in pairs:
        p = prompt_ids(tokenizer, prompt)
        a = [*encode_ids(tokenizer, answer), tokenizer.eos_token_id]
        ids = p + a
        if len(ids) > max_length:
            raise ConfigError(f"an example has {len(ids)} tokens, above max_length={max_length}; raise --max-length")
        labels = ids[:] if loss_on_prompt else [-100] * len(p) + a
        if tokenizer.bos_token_id is not None and ids and ids[0] == tokenizer.bos_token_id:
            labels[0] = -100
        out.append((ids, labels))
    return out


def data_fingerprint(items: Sequence[tuple[list[int], list[int]]]) -> str:
    h = hashlib.sha256()
    for ids, labels in items:
        h.update(np.asarray(ids, dtype=np.int32).tobytes())
        h.update(np.asarray(labels, dtype=np.int32).tobytes())
    return h.hexdigest()[:16]


def _collate(batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Example indices of optimizer step ``step``: epoch-wise seeded permutations, wrapped."""
    per_epoch = max(n // batch_size, 1)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    idx = perm[k * batch_size : (k + 1) * batch_size]
    if len(idx) < batch_size:  # fewer examples than one batch
        idx = np.resize(perm, batch_size)
    return idx


def _trainable_state(model: Any) -> dict[str, Any]:
    return {k: p.detach().cpu().contiguous() for k, p in model.named_parameters() if p.requires_grad}


def _checkpoints(out_dir: Path) -> list[Path]:
    root = out_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / "state.json").exists())


def _save_checkpoint(out_dir: Path, model: Any, optimizer: Any, step: int, meta: dict[str, Any], keep: int) -> Path:
    import torch
    from safetensors.torch import save_file

    path = out_dir / "checkpoints" / f"step-{step:07d}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    save_file(_trainable_state(model), str(path / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save({"torch": torch.get_rng_state()}, path / "rng.pt")
    (path / "state.json").write_text(json.dumps({**meta, "step": step}, indent=2, sort_keys=True))
    for old in _checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _load_checkpoint(path: Path, model: Any, optimizer: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    state = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    unknown = [k for k in state if k not in params]
    if unknown:
        raise ModelError(f"checkpoint {path} does not fit the model (e.g. {unknown[0]})")
    with torch.no_grad():
        for k, v in state.items():
            params[k].copy_(v)
    optimizer.load_state_dict(_load_tensors(path / "optimizer.pt"))
    torch.set_rng_state(_load_tensors(path / "rng.pt")["torch"])
    return json.loads((path / "state.json").read_text())


def _load_tensors(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers: a pickle that names code is refused."""
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path} is not a plain tensor file (refused by weights-only loading: {first}); "
            "delete that checkpoint or train without --resume"
        ) from None


def train_loop(
    model: Any,
    tokenizer: Any,
    train: Sequence[tuple[list[int], list[int]]],
    val: Sequence[tuple[list[int], list[int]]],
    out_dir: str | Path,
    cfg: TrainConfig,
    *,
    resume: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Optimise the trainable parameters of ``model``; returns the final metrics."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not train:
        raise ConfigError("no training examples")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    meta = {"config": asdict(cfg), "data": data_fingerprint(train), "n_train": len(train)}
    step = 0
    ckpts = _checkpoints(out_dir) if resume else []
    if ckpts:
        saved = json.loads((ckpts[-1] / "state.json").read_text())
        changed = [k for k in _FIXED_ON_RESUME if saved["config"].get(k) != getattr(cfg, k)]
        if saved.get("data") != meta["data"]:
            changed.append("training data")
        if changed:
            raise ModelError(
                f"{out_dir} holds a run with other settings ({', '.join(changed)}); use a new --out or --no-resume"
            )
        step = int(_load_checkpoint(ckpts[-1], model, optimizer)["step"])
        logger.info("resumed from %s (step %d of %d)", ckpts[-1].name, step, cfg.max_steps)
    elif not resume and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")
    if step == 0:
        torch.manual_seed(cfg.seed)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    model.train()
    t0 = time.perf_counter()
    history: list[dict[str, float]] = []
    loss_acc, n_acc, tokens = 0.0, 0, 0
    metrics: dict[str, float] = {}
    while step < cfg.max_steps:
        lr = cfg.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _collate([train[i] for i in _batch_indices(len(train), cfg.batch_size, cfg.seed, step)], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        optimizer.step()
        step += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        tokens += int(batch["attention_mask"].sum())
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            metrics = {
                "loss": loss_acc / n_acc,
                "lr": lr,
                "grad_norm": gnorm,
                "tokens_per_s": tokens / max(time.perf_counter() - t0, 1e-9),
            }
            loss_acc, n_acc = 0.0, 0
            logger.debug("step %d: %s", step, metrics)
        if val and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            metrics["val_loss"] = evaluate_loss(model, val, pad, cfg.batch_size)
            model.train()
        if progress is not None:
            progress(step, cfg.max_steps, metrics)
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            _save_checkpoint(out_dir, model, optimizer, step, meta, cfg.keep_checkpoints)
            history.append({"step": step, **metrics})
    model.eval()
    result = {"step": step, **metrics, "seconds": time.perf_counter() - t0}
    with (out_dir / "train_log.jsonl").open("a") as fh:
        for rec in history:
            fh.write(json.dumps(rec) + "\n")
    return result


def evaluate_loss(model: Any, items: Sequence[tuple[list[int], list[int]]], pad_id: int, batch_size: int) -> float:
    """Mean per-token loss over ``items`` (labels != -100)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(items), batch_size):
            batch = {k: v.to(device) for k, v in _collate(items[lo : lo + batch_size], pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            lp = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                labels.reshape(-1),
                reduction="sum",
                ignore_index=-100,
            )
            total += float(lp)
            count += int((labels != -100).sum())
    return total / max(count, 1)


# -- the two commands --------------------------------------------------------------------------------
def pretraining_pairs(
    configs: Sequence[DefectConfiguration], encoding: str, n_augment: int = 1, seed: int = 0
) -> list[tuple[str, str]]:
    """Unconditional ``(prompt, answer)`` pairs, each structure in ``n_augment`` symmetry orientations."""
    check_encoding(encoding)
    rng = np.random.default_rng(seed)
    out = []
    for cfg in configs:
        n_ops = cfg.host.symmetry_permutations.shape[0]
        ops = [None] + [int(o) for o in rng.integers(0, n_ops, size=n_augment - 1)]
        prompt = build_prompt(cfg.host, None, encoding)
        for op in ops:
            out.append((prompt, encode_answer(cfg if op is None else cfg.transformed(op), encoding)))
    return out


def pretrain(
    pairs: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    encoding: str,
    hosts: Sequence[str],
    preset: str = "small",
    cfg: TrainConfig | None = None,
    val_pairs: Sequence[tuple[str, str]] = (),
    tokenizer: Any = None,
    resume: bool = True,
    progress: Progress | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Pretrain a fresh Llama of ``preset`` on ``pairs`` (loss on every token); saves the base model."""
    from llm.model import ModelManifest, new_model, save_model, versions
    from llm.tokenizer import build_tokenizer, tokenizer_fingerprint

    cfg = cfg or TrainConfig()
    tok = tokenizer or build_tokenizer()
    model = new_model(tok, preset, seed=cfg.seed, max_positions=max(cfg.max_length, 2048)).to(device)
    train = tokenize_pairs(tok, pairs, cfg.max_length, loss_on_prompt=True)
    val = tokenize_pairs(tok, val_pairs, cfg.max_length, loss_on_prompt=True)
    result = train_loop(model, tok, train, val, out_dir, cfg, resume=resume, progress=progress)
    manifest = ModelManifest(
        kind="base",
        tokenizer_fingerprint=tokenizer_fingerprint(tok),
        encodings=[encoding],
        hosts=list(hosts),
        seed=cfg.seed,
        training={"stage": "pretrain", "preset": preset, **asdict(cfg), **_short(result), "n_examples": len(train)},
        versions=versions(),
    )
    save_model(model, tok, out_dir, manifest)
    return result


def finetune(
    base_dir: str | Path,
    pairs: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    encoding: str,
    hosts: Sequence[str],
    cfg: TrainConfig | None = None,
    val_pairs: Sequence[tuple[str, str]] = (),
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    resume: bool = True,
    progress: Progress | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    properties: Sequence[str] = (),
    property_ranges: Mapping[str, Sequence[float]] | None = None,
    host_property_ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> dict[str, Any]:
    """LoRA-tune the base model in ``base_dir`` on instruction pairs (loss on answers); saves the adapter.

    ``properties``: those the prompts condition on, recorded in the adapter's manifest so that
    campaigns write only these into prompts; ``property_ranges``: their value ranges in training,
    recorded too (campaigns search prompt values inside them); ``host_property_ranges``: the same
    per host key, for an adapter trained on several hosts.
    """
    from llm.model import ModelManifest, add_lora, load_base, save_adapter, versions
    from llm.tokenizer import tokenizer_fingerprint

    cfg = cfg or TrainConfig(lr=2e-4)
    model, tok, base_manifest = load_base(
        base_dir, encoding=encoding, host_key=hosts[0] if len(hosts) == 1 else None, device=device, dtype=dtype
    )
    import torch

    torch.manual_seed(cfg.seed)
    model = add_lora(model, r=lora_r, alpha=lora_alpha, dropout=lora_dropout, target_modules=target_modules)
    train = tokenize_pairs(tok, pairs, cfg.max_length, loss_on_prompt=False)
    val = tokenize_pairs(tok, val_pairs, cfg.max_length, loss_on_prompt=False)
    result = train_loop(model, tok, train, val, out_dir, cfg, resume=resume, progress=progress)
    fp = tokenizer_fingerprint(tok)
    manifest = ModelManifest(
        kind="adapter",
        tokenizer_fingerprint=fp,
        encodings=[encoding],
        hosts=list(hosts),
        base_model=str(base_dir),
        base_fingerprint=base_manifest.tokenizer_fingerprint if base_manifest else fp,
        seed=cfg.seed,
        training={
            "stage": "finetune",
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            **asdict(cfg),
            **_short(result),
            "n_examples": len(train),
        },
        versions=versions(),
        properties=list(properties),
        property_ranges={p: [float(v) for v in r] for p, r in (property_ranges or {}).items()},
        host_property_ranges={
            h: {p: [float(v) for v in r] for p, r in per_host.items()}
            for h, per_host in (host_property_ranges or {}).items()
        },
    )
    save_adapter(model, tok, out_dir, manifest)
    return result


def _short(result: dict[str, Any]) -> dict[str, Any]:
    return {f"final_{k}": (round(v, 6) if isinstance(v, float) else v) for k, v in result.items()}
