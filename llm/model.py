"""Models: the embedded small Llama, any Hugging Face causal LM, LoRA adapters, safe loading.

Every model or adapter directory this project writes carries ``hts_llm.json`` (:class:`ModelManifest`):
what it is (``base`` or ``adapter``), the tokenizer fingerprint, the encodings and hosts it was
trained on, the base model it extends, seeds and versions. Loading refuses a directory whose recorded
settings do not match the request (:func:`check_manifest`). Weights are read from safetensors only;
a directory with only pickled weights (``pytorch_model.bin``, ``adapter_model.bin``) is refused.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hts.errors import ModelError

logger = logging.getLogger(__name__)

MANIFEST = "hts_llm.json"

# name -> (hidden, layers, heads, kv_heads, intermediate); every preset uses GQA (kv_heads < heads).
PRESETS: dict[str, tuple[int, int, int, int, int]] = {
    "test": (32, 2, 4, 2, 64),  # unit tests: ~40k parameters
    "tiny": (128, 4, 4, 2, 344),  # CPU smoke runs: ~0.9M parameters
    "small": (256, 6, 8, 4, 688),  # the embedded default: ~4.5M parameters
    "base": (512, 8, 8, 4, 1376),  # GPU: ~25M parameters
}


@dataclass
class ModelManifest:
    """Settings recorded next to a model or adapter (``hts_llm.json``)."""

    kind: str  # "base" or "adapter"
    tokenizer_fingerprint: str
    encodings: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # host keys, e.g. "MoS2-8x8x1"; empty = any
    base_model: str | None = None  # adapters: the base model path or hub name
    base_fingerprint: str | None = None  # adapters: the base's tokenizer fingerprint
    seed: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # Properties the training prompts conditioned on (adapters); empty: not recorded (any may be tried).
    properties: list[str] = field(default_factory=list)
    # The range of each property's values in the training prompts (adapters): what may sensibly be asked.
    property_ranges: dict[str, list[float]] = field(default_factory=dict)
    # The same per host key (adapters trained on several hosts): each host's prompts condition on their
    # own properties over their own ranges (a band gap of 4 eV is usual for h-BN, unheard of for MoS2).
    host_property_ranges: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    format: int = 1

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelManifest | None:
        """The manifest of ``directory``, ``None`` if it has none (a foreign Hugging Face model)."""
        path = Path(directory) / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path} is not a valid manifest: {exc}") from None


def versions() -> dict[str, str]:
    """Versions of the packages that shape a model (recorded in manifests)."""
    from hts.provenance import package_versions

    return package_versions(("hts2d", "torch", "transformers", "peft", "tokenizers"))


def check_manifest(
    manifest: ModelManifest | None,
    where: str | Path,
    *,
    tokenizer_fingerprint: str | None = None,
    encoding: str | None = None,
    host_key: str | None = None,
) -> None:
    """Raise :class:`ModelError` when ``manifest`` contradicts the tokenizer, encoding or host asked for."""
    if manifest is None:
        return
    if tokenizer_fingerprint is not None and manifest.tokenizer_fingerprint != tokenizer_fingerprint:
        raise ModelError(
            f"{where} was trained with tokenizer {manifest.tokenizer_fingerprint}, not the one given "
            f"({tokenizer_fingerprint}); use the tokenizer saved with the model"
        )
    if encoding is not None and manifest.encodings and encoding not in manifest.encodings:
        raise ModelError(
            f"{where} was trained on encoding(s) {', '.join(manifest.encodings)}, not {encoding!r}; "
            f"pass --encoding {manifest.encodings[0]}"
        )
    if host_key is not None and manifest.hosts and host_key not in manifest.hosts:
        raise ModelError(f"{where} was trained on host(s) {', '.join(manifest.hosts)}, not {host_key}")


def llama_config(vocab_size: int, preset: str = "small", max_positions: int = 8192, **tokens: Any) -> Any:
    """A ``LlamaConfig`` of a preset (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention)."""
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise ModelError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    hidden, layers, heads, kv_heads, inter = PRESETS[preset]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        hidden_act="silu",
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        **tokens,
    )


def new_model(tokenizer: Any, preset: str = "small", seed: int = 0, max_positions: int = 8192) -> Any:
    """A freshly initialised Llama for ``tokenizer`` (deterministic in ``seed``)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = llama_config(
        len(tokenizer),
        preset,
        max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)


def _require_safetensors(directory: Path, stem: str) -> None:
    if any(directory.glob(f"{stem}*.safetensors")):
        return
    pickled = [p for ext in ("bin", "pt", "pth", "pkl", "ckpt") for p in directory.glob(f"*{stem}*.{ext}")]
    if pickled:
        raise ModelError(
            f"{directory} holds only pickled weights ({pickled[0].name}); convert them to safetensors "
            "(pickles can run code when loaded)"
        )
    raise ModelError(f"{directory} holds no {stem}*.safetensors weights")


def save_model(model: Any, tokenizer: Any, directory: str | Path, manifest: ModelManifest) -> Path:
    """Save a base model (safetensors), its tokenizer and manifest into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    manifest.save(directory)
    return directory


def load_base(
    path: str | Path,
    *,
    encoding: str | None = None,
    host_key: str | None = None,
    device: str = "cpu",
    dtype: str | None = None,
) -> tuple[Any, Any, ModelManifest | None]:
    """``(model, tokenizer, manifest)`` of a local base model directory (ours or any HF causal LM)."""
    import torch
    from transformers import AutoModelForCausalLM

    from llm.tokenizer import load_tokenizer, tokenizer_fingerprint

    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} does not exist")
    _require_safetensors(path, "model")
    tokenizer = load_tokenizer(path)
    manifest = ModelManifest.load(path)
    check_manifest(
        manifest, path, tokenizer_fingerprint=tokenizer_fingerprint(tokenizer), encoding=encoding, host_key=host_key
    )
    torch_dtype = getattr(torch, dtype) if dtype else None
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, dtype=torch_dtype)
    model.to(device)
    model.eval()
    return model, tokenizer, manifest


def add_lora(
    model: Any, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: Iterable[str] | None = None
) -> Any:
    """Wrap ``model`` with fresh LoRA adapters (attention and MLP projections by default)."""
    from peft import LoraConfig, get_peft_model

    targets = list(target_modules or ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def save_adapter(model: Any, tokenizer: Any, directory: str | Path, manifest: ModelManifest) -> Path:
    """Save a peft model's adapter (safetensors), the tokenizer and the manifest into ``directory``.

    peft's ``save_pretrained`` writes only the adapter weights, so this is :func:`save_model`.
    """
    return save_model(model, tokenizer, directory, manifest)


def quiet_transformers() -> None:
    """No weight-loading progress bars or INFO/WARNING logs from transformers (our own logs say what loads)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_with_adapter(
    base: str | Path,
    adapter: str | Path | None = None,
    *,
    encoding: str | None = None,
    host_key: str | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    merge: bool = False,
) -> tuple[Any, Any, ModelManifest | None]:
    """Base model plus (optionally) a LoRA adapter, both checked against the request.

    The adapter's recorded tokenizer must be the base's. ``merge`` folds the adapter into the weights
    (faster generation on CPU).
    """
    model, tokenizer, manifest = load_base(base, encoding=encoding, host_key=host_key, device=device, dtype=dtype)
    if adapter is None:
        return model, tokenizer, manifest
    from peft import PeftModel

    from llm.tokenizer import tokenizer_fingerprint

    adapter = Path(adapter)
    if not adapter.is_dir():
        raise ModelError(f"adapter directory {adapter} does not exist")
    _require_safetensors(adapter, "adapter_model")
    a_manifest = ModelManifest.load(adapter)
    check_manifest(
        a_manifest,
        adapter,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        encoding=encoding,
        host_key=host_key,
    )
    with warnings.catch_warnings():  # peft calls a transformers method deprecated in favour of another
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    if merge:
        model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model, tokenizer, a_manifest or manifest
