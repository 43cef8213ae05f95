"""Pretraining and LoRA fine-tuning: steps run, adapters save/load, resume, refusal of mismatches."""

from __future__ import annotations

import json

import pytest

from hts.errors import ModelError
from llm.dataset import identity_op
from llm.generation import GenerationRequest, TransformersGenerator
from llm.model import ModelManifest, load_base, load_with_adapter
from llm.prompts import build_prompt
from llm.train import TrainConfig, finetune, pretrain, pretraining_pairs
from tests.llm.conftest import configs


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, host):
    out = tmp_path_factory.mktemp("base")
    pairs = pretraining_pairs(configs(host, 21, 24, max_defects=4), "sparse", n_augment=2)
    cfg = TrainConfig(max_steps=6, batch_size=8, lr=3e-3, warmup_steps=2, save_every=3, eval_every=3, log_every=3)
    result = pretrain(pairs, out, encoding="sparse", hosts=[host.key], preset="test", cfg=cfg, val_pairs=pairs[:4])
    assert result["step"] == 6 and "val_loss" in result
    return out


def _ft_pairs(host):
    return [
        (build_prompt(host, {"homo_lumo_gap": 0.5 + 0.1 * i}, "sparse"), a)
        for i, (_, a) in enumerate(pretraining_pairs(configs(host, 22, 16, max_defects=4), "sparse"))
    ]


def test_pretrain_writes_a_loadable_model(base_dir, host):
    m = ModelManifest.load(base_dir)
    assert m.kind == "base" and m.encodings == ["sparse"] and m.hosts == [host.key] and m.seed == 0
    assert (base_dir / "model.safetensors").exists()
    assert sorted(p.name for p in (base_dir / "checkpoints").iterdir()) == ["step-0000003", "step-0000006"]
    with pytest.raises(ModelError, match="encoding"):
        load_base(base_dir, encoding="cif")
    with pytest.raises(ModelError, match="host"):
        load_base(base_dir, host_key="MoS2-8x8x1")


def test_lora_finetune_saves_and_loads_adapter(base_dir, host, tmp_path):
    cfg = TrainConfig(max_steps=4, batch_size=4, lr=1e-3, warmup_steps=1, save_every=2, eval_every=2, log_every=2)
    pairs = _ft_pairs(host)
    result = finetune(
        base_dir,
        pairs,
        tmp_path / "ad",
        encoding="sparse",
        hosts=[host.key],
        cfg=cfg,
        val_pairs=pairs[:2],
        lora_r=4,
        lora_alpha=8,
    )
    assert result["step"] == 4
    ad = tmp_path / "ad"
    assert (ad / "adapter_model.safetensors").exists()
    man = ModelManifest.load(ad)
    assert man.kind == "adapter" and man.base_model == str(base_dir)
    model, tok, _ = load_with_adapter(base_dir, ad, encoding="sparse", host_key=host.key)
    # the adapter changes the model (B matrices trained away from zero)
    base, _, _ = load_base(base_dir)
    import torch

    ids = torch.tensor([tok("Here is")["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, base(ids).logits)
    gen = TransformersGenerator.from_pretrained(str(base_dir), str(ad), encoding="sparse", host=host)
    res = gen.generate([GenerationRequest(host, {"homo_lumo_gap": 1.0}, n=4, max_defects=3, seed=0)])
    assert all(r.valid for r in res)
    # resume: continuing to 6 steps starts from the step-4 checkpoint
    cfg6 = TrainConfig(max_steps=6, batch_size=4, lr=1e-3, warmup_steps=1, save_every=2, eval_every=2, log_every=2)
    again = finetune(base_dir, pairs, ad, encoding="sparse", hosts=[host.key], cfg=cfg6, lora_r=4, lora_alpha=8)
    assert again["step"] == 6
    log = [json.loads(x) for x in (ad / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    # other settings on the same folder are refused
    with pytest.raises(ModelError, match="other settings"):
        finetune(
            base_dir,
            pairs,
            ad,
            encoding="sparse",
            hosts=[host.key],
            cfg=TrainConfig(max_steps=8, batch_size=2),
            lora_r=4,
            lora_alpha=8,
        )


def test_resume_is_exact(host, tmp_path):
    pairs = pretraining_pairs(configs(host, 23, 12, max_defects=3), "sparse")
    cfg = TrainConfig(max_steps=4, batch_size=4, lr=3e-3, warmup_steps=1, save_every=2, eval_every=100, log_every=1)
    straight = pretrain(pairs, tmp_path / "a", encoding="sparse", hosts=[host.key], preset="test", cfg=cfg)
    half = TrainConfig(**{**cfg.__dict__, "max_steps": 2})
    pretrain(pairs, tmp_path / "b", encoding="sparse", hosts=[host.key], preset="test", cfg=half)
    resumed = pretrain(pairs, tmp_path / "b", encoding="sparse", hosts=[host.key], preset="test", cfg=cfg)
    assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-5)


def test_refuses_mismatched_and_pickled(base_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(base_dir, bad, ignore=shutil.ignore_patterns("checkpoints"))
    man = ModelManifest.load(bad)
    man.tokenizer_fingerprint = "0" * 16
    man.save(bad)
    with pytest.raises(ModelError, match="tokenizer"):
        load_base(bad)
    (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickled"):
        load_base(bad)
    with pytest.raises(ModelError, match="does not exist"):
        load_base(tmp_path / "nope")


def test_identity_op(host):
    assert (host.symmetry_permutations[identity_op(host)] == range(host.n_sites)).all()


class _Payload:
    """Unpickling this runs ``Path(marker).touch()``: what a hostile weights file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_pickle_payloads_never_run(base_dir, host, tmp_path):
    """A hostile pickle as model weights or as a checkpoint's optimizer state: refused, nothing runs."""
    import pickle
    import shutil

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    pickle.loads(payload)  # the payload is live: loading it with plain pickle runs it
    assert marker.exists()
    marker.unlink()

    bad = tmp_path / "bad"
    shutil.copytree(base_dir, bad)
    (bad / "model.safetensors").unlink()
    (bad / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(ModelError, match="pickled"):
        load_base(bad)
    assert not marker.exists()

    # The checkpoint resume path loads optimizer state with torch.load(weights_only=True).
    ckpt = sorted((bad / "checkpoints").iterdir())[-1]
    (ckpt / "optimizer.pt").write_bytes(payload)
    pairs = pretraining_pairs(configs(host, 21, 24, max_defects=4), "sparse", n_augment=2)
    cfg = TrainConfig(max_steps=9, batch_size=8, lr=3e-3, warmup_steps=2, save_every=3, eval_every=3, log_every=3)
    with pytest.raises(ModelError, match="not a plain tensor file"):
        pretrain(pairs, bad, encoding="sparse", hosts=[host.key], preset="test", cfg=cfg)
    assert not marker.exists()
