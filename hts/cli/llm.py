"""``hts llm``: tokenizer, instruction dataset, pretraining, LoRA fine-tuning, generation, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

app = typer.Typer(
    help="The LLM generator: dataset, tokenizer, pretrain, finetune, generate, eval.", no_args_is_help=True
)

ENCODING_HELP = "Text encoding: sparse (short), sites (one symbol per site) or cif (the study's listing)."
DEFAULT_HELP = " `default`: the embedded default (HTS_MODELS_DIR, else the checkout's models/)."

# Options that several commands take, defined once (each command gives its own default).
Encoding = Annotated[str, typer.Option(help=ENCODING_HELP)]
Supercell = Annotated[str | None, typer.Option(help="Supercell such as 4x4 (default: the 2DMD one).")]
Steps = Annotated[int, typer.Option(help="Optimizer steps.")]
BatchSize = Annotated[int, typer.Option(help="Examples per optimizer step.")]
Warmup = Annotated[int, typer.Option(help="Linear learning-rate warm-up in steps.")]
MaxLength = Annotated[int, typer.Option(help="Longest example in tokens.")]
SaveEvery = Annotated[int, typer.Option(help="Checkpoint (and validation) interval in steps.")]
Resume = Annotated[bool, typer.Option(help="Continue from the newest checkpoint in OUT.")]
Threads = Annotated[int | None, typer.Option(help="torch CPU threads.")]
Device = Annotated[str, typer.Option(help="cpu or cuda.")]


def model_folder(value: str | Path | None, kind: str) -> str | None:
    """A model folder given on the command line: ``default`` is the embedded default of ``kind``
    (``surrogate``, ``base_model`` or ``adapter``, :func:`hts.settings.default_model`); a path that is
    a file is refused as such. Other values pass unchanged (the loaders say what is wrong with them)."""
    from hts.errors import ModelError

    if value is None:
        return None
    if str(value) == "default":
        from hts.settings import MODELS_DIR_ENV, default_model

        path = default_model(kind)
        if not path.is_dir():
            raise ModelError(
                f"the embedded default {kind} ({path}) is not built yet; build it with scripts/build_defaults.sh, "
                f"point {MODELS_DIR_ENV} at a folder of built defaults, or give a path"
            )
        return str(path)
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ModelError(f"{kind} path {path} is a file, expected a folder (a model directory)")
    return str(value)


def _host(name: str, supercell: str | None) -> Any:
    from hts.cli.data import _parse_supercell
    from hts.hosts import get_host

    return get_host(name, _parse_supercell(supercell))


def _host_from_key(key: str) -> Any:
    from hts.hosts import host_from_key

    return host_from_key(key)


def _targets(items: list[str] | None) -> dict[str, float]:
    from hts.errors import ConfigError
    from llm.properties import normalize_targets

    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--target must look like homo_lumo_gap=1.2, got {item!r}") from None
        if not sep:
            raise ConfigError(f"--target must look like homo_lumo_gap=1.2, got {item!r}")
    return normalize_targets(out)


def _sweep(item: str | None) -> tuple[str, list[float]] | None:
    """``PROP=LO:HI:K`` -> the property and K evenly spaced values from LO to HI."""
    from hts.errors import ConfigError
    from llm.properties import canonical_property

    if item is None:
        return None
    key, _, rng = item.partition("=")
    parts = rng.split(":")
    try:
        lo, hi, k = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3 or k < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"--sweep must look like homo_lumo_gap=0.2:1.8:9 (from:to:count), got {item!r}") from None
    return canonical_property(key.strip()), [round(float(v), 6) for v in np.linspace(lo, hi, k)]


def _progress_bar(description: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _quiet_transformers() -> None:
    from llm.model import quiet_transformers

    quiet_transformers()


@app.command()
def tokenizer(out: Path = typer.Argument(..., help="Folder to write the tokenizer to (Hugging Face format).")) -> None:
    """Build and save the project's tokenizer (digits, element symbols and VAC as single tokens)."""
    from rich.console import Console

    from llm.tokenizer import build_tokenizer, save_tokenizer, tokenizer_fingerprint

    tok = build_tokenizer()
    save_tokenizer(tok, out)
    Console().print(f"tokenizer: {len(tok)} tokens, fingerprint {tokenizer_fingerprint(tok)} -> {out}")


@app.command()
def dataset(
    data: Path = typer.Option(..., help="2DMD-layout dataset folder."),
    out: Path = typer.Option(..., help="Output folder: train.jsonl, val.jsonl, manifest.json."),
    encoding: Encoding = "sparse",
    host: str | None = typer.Option(None, help="Host to read when the folder holds several."),
    augment: int = typer.Option(4, help="Examples per structure (1 = no symmetry augmentation)."),
    val_fraction: float = typer.Option(0.1, help="Fraction of structures held out for validation."),
    p_unconditional: float = typer.Option(0.1, help="Probability of an example with no properties."),
    seed: int = typer.Option(0, help="Random seed (subsets, symmetry operations, split)."),
    properties: str | None = typer.Option(
        None,
        help="Comma-separated properties an example may condition on (default: the study's six: homo, lumo, "
        "homo_lumo_gap, formation_energy, energy_per_atom, fermi_level; also known: normalized_homo, "
        "normalized_lumo, formation_energy_per_site, levels above the host's VBM for hosts whose absolute "
        "levels differ); fewer properties give each more examples, so a small model learns them sooner.",
    ),
    pseudo_labels: str | None = typer.Option(
        None,
        help="Surrogate model folder: also add examples of the dataset's unlabelled structures (and of "
        "--pseudo-random configurations) labelled by its predictions, marked source=surrogate." + DEFAULT_HELP,
    ),
    pseudo_random: int = typer.Option(0, help="With --pseudo-labels: this many random configurations too."),
    pseudo_max_defects: int = typer.Option(12, help="--pseudo-random: at most this many defects each."),
    pseudo_rule_subsets: bool = typer.Option(
        False,
        help="--pseudo-random: draw each configuration under a random non-empty subset of the host's defect "
        "rules (covers substitution-only and single-type patterns; see llm.sampling).",
    ),
    balance: str | None = typer.Option(
        None,
        help="Resample the training examples conditioned on this property to a flat histogram over its "
        "range (llm.balance), so rare values are learnt as well as common ones.",
    ),
    balance_bins: int = typer.Option(10, help="--balance: number of equal-width value bins."),
) -> None:
    """Build the instruction dataset (JSONL) from a 2DMD-layout dataset."""
    from rich.console import Console

    from hts.provenance import provenance
    from hts.twodmd import read_2dmd
    from llm.dataset import DEFAULT_PROPERTIES, build_examples, write_splits
    from llm.properties import canonical_property

    pseudo_labels = model_folder(pseudo_labels, "surrogate")
    ds = read_2dmd(data, host=host)
    props = (
        [canonical_property(p.strip()) for p in properties.split(",") if p.strip()]
        if properties
        else DEFAULT_PROPERTIES
    )

    def examples_of(dataset: Any, source: str) -> list[Any]:
        return build_examples(
            dataset,
            encoding,
            properties=props,
            n_augment=augment,
            val_fraction=val_fraction,
            p_unconditional=p_unconditional,
            seed=seed,
            source=source,
        )

    examples = examples_of(ds, "label")
    n_pseudo = 0
    if pseudo_labels is not None:
        from llm.pseudo_labels import pseudo_label, unlabelled
        from llm.sampling import random_configurations, random_rule_subset_configurations

        ids, configs = unlabelled(ds.ids, ds.configs, ds.table, props)
        rng = np.random.default_rng([seed, 1])
        draw = random_rule_subset_configurations if pseudo_rule_subsets else random_configurations
        extra = draw(ds.host, pseudo_random, pseudo_max_defects, rng) if pseudo_random else []
        ids += [f"pseudo-random-{i:06d}" for i in range(len(extra))]
        configs += extra
        pseudo = pseudo_label(ds.host, ids, configs, _surrogate_predict(Path(pseudo_labels)), list(props))
        examples += examples_of(pseudo, "surrogate")
        n_pseudo = len(pseudo.ids)
    balanced = None
    if balance:
        from llm.balance import balance_examples

        examples, balanced = balance_examples(examples, balance, bins=balance_bins, seed=seed)
    settings = {
        "command": "hts llm dataset",
        "data": str(data),
        "encoding": encoding,
        "host": ds.host.key,
        "augment": augment,
        "val_fraction": val_fraction,
        "p_unconditional": p_unconditional,
        "seed": seed,
        "properties": list(props),
        "pseudo_labels": str(pseudo_labels) if pseudo_labels else None,
        "pseudo_random": pseudo_random if pseudo_labels else 0,
        "pseudo_labelled_structures": n_pseudo,
        "pseudo_rule_subsets": bool(pseudo_labels and pseudo_rule_subsets),
        "balance": balanced,
    }
    paths = write_splits(examples, out, provenance(settings))
    pseudo_txt = f" and {n_pseudo} surrogate-labelled ones" if n_pseudo else ""
    Console().print(
        f"{len(examples)} examples from {len(ds)} structures{pseudo_txt} -> {paths['train']}, {paths['val']}"
    )


def _train_cfg(steps: int, batch_size: int, lr: float, warmup: int, max_length: int, seed: int, save_every: int) -> Any:
    from llm.train import TrainConfig

    return TrainConfig(
        max_steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup,
        max_length=max_length,
        seed=seed,
        save_every=save_every,
        eval_every=save_every,
        log_every=max(1, min(20, steps)),
    )


def _run_with_progress(description: str, fn: Any, **kwargs: Any) -> dict[str, Any]:
    bar = _progress_bar(description)
    with bar:
        task = bar.add_task(description, total=None, info="")

        def progress(step: int, total: int, metrics: dict[str, float]) -> None:
            info = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k in ("loss", "val_loss", "lr"))
            bar.update(task, completed=step, total=total, info=info)

        return fn(progress=progress, **kwargs)


@app.command()
def pretrain(
    out: Path = typer.Option(..., help="Output model folder (checkpoints inside; resumable)."),
    data: list[Path] | None = typer.Option(
        None, help="2DMD-layout dataset whose structures are the corpus (repeatable: one per host)."
    ),
    random_structures: int = typer.Option(0, "--random", help="Add this many random configurations per host."),
    host: list[str] | None = typer.Option(
        None,
        help="Host of the --random structures (repeatable: the base model then knows every host named; "
        "default MoS2, or the hosts of --data), or the host to read when a --data folder holds several.",
    ),
    supercell: Supercell = None,
    max_random_defects: int = typer.Option(12, help="--random: at most this many defects per structure."),
    encoding: Encoding = "sparse",
    preset: str = typer.Option("small", help="Model size: test, tiny, small, base."),
    augment: int = typer.Option(2, help="Symmetry-augmented copies per structure."),
    steps: Steps = 2000,
    batch_size: BatchSize = 16,
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, cosine decay after the warm-up)."),
    warmup: Warmup = 100,
    max_length: MaxLength = 1024,
    save_every: SaveEvery = 200,
    seed: int = typer.Option(0, help="Random seed (corpus, split, initial weights, batches)."),
    resume: Resume = True,
    threads: Threads = None,
    device: Device = "cpu",
) -> None:
    """Pretrain the embedded small Llama on unconditional encodings of structures."""
    from rich.console import Console

    from hts.errors import ConfigError
    from llm.train import pretrain as run_pretrain
    from llm.train import pretraining_pairs

    _threads(threads)
    _quiet_transformers()
    configs, hosts = _pretraining_corpus(
        data or [], host or [], supercell, random_structures, max_random_defects, np.random.default_rng(seed)
    )
    if not configs:
        raise ConfigError("no structures: pass --data DIR and/or --random N")
    pairs = pretraining_pairs(configs, encoding, n_augment=augment, seed=seed)
    rng = np.random.default_rng(seed)
    val_idx = set(rng.choice(len(pairs), size=max(1, len(pairs) // 50), replace=False).tolist())
    train = [p for i, p in enumerate(pairs) if i not in val_idx]
    val = [p for i, p in enumerate(pairs) if i in val_idx]
    cfg = _train_cfg(steps, batch_size, lr, warmup, max_length, seed, save_every)
    result = _run_with_progress(
        "pretrain",
        run_pretrain,
        pairs=train,
        out_dir=out,
        encoding=encoding,
        hosts=[h.key for h in hosts],
        preset=preset,
        cfg=cfg,
        val_pairs=val,
        resume=resume,
        device=device,
    )
    Console().print(
        f"pretrained {preset} model on {len(train)} examples -> {out}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float))
    )


def _pretraining_corpus(
    data: list[Path], hosts: list[str], supercell: str | None, n_random: int, max_defects: int, rng: Any
) -> tuple[list[Any], list[Any]]:
    """The structures of every ``data`` folder plus ``n_random`` random configurations of each host
    (the ``hosts`` named, else those of ``data``, else MoS2), and the hosts involved in order."""
    from hts.twodmd import read_2dmd
    from llm.sampling import random_configurations

    configs: list[Any] = []
    seen: dict[str, Any] = {}
    for folder in data:
        ds = read_2dmd(folder, host=hosts[0] if len(hosts) == 1 and len(data) == 1 else None)
        configs.extend(ds.configs)
        seen.setdefault(ds.host.key, ds.host)
    read = {h.name: h for h in seen.values()}  # a named host that --data has comes in the data's supercell

    def host_of(name: str) -> Any:
        h = _host(name, supercell)
        return read.get(h.name, h) if supercell is None else h

    named = [host_of(name) for name in hosts] if hosts else list(seen.values()) or [_host("MoS2", supercell)]
    for h in named:
        seen.setdefault(h.key, h)
        if n_random:
            configs.extend(random_configurations(h, n_random, max_defects, rng))
    return configs, list(seen.values())


@app.command()
def finetune(
    base: str = typer.Option(
        ..., help="Base model folder (ours from `hts llm pretrain`, or a local Llama-3)." + DEFAULT_HELP
    ),
    data: list[Path] = typer.Option(
        ..., help="Instruction dataset folder from `hts llm dataset` (repeatable: one per host, trained together)."
    ),
    out: Path = typer.Option(..., help="Output adapter folder (checkpoints inside; resumable)."),
    steps: Steps = 1000,
    batch_size: BatchSize = 16,
    lr: float = typer.Option(2e-4, help="Peak learning rate of the LoRA weights."),
    warmup: Warmup = 50,
    max_length: MaxLength = 1024,
    lora_r: int = typer.Option(16, help="LoRA rank."),
    lora_alpha: int = typer.Option(32, help="LoRA scaling (alpha)."),
    lora_dropout: float = typer.Option(0.05, help="Dropout on the LoRA inputs."),
    save_every: SaveEvery = 200,
    seed: int = typer.Option(0, help="Random seed (batches, LoRA initialisation)."),
    resume: Resume = True,
    threads: Threads = None,
    device: Device = "cpu",
    dtype: str | None = typer.Option(None, help="Base weights dtype, e.g. bfloat16 for Llama-3 on a GPU."),
) -> None:
    """LoRA fine-tune a base model on the instruction dataset."""
    from rich.console import Console

    from hts.errors import InputDataError
    from llm.dataset import property_ranges, read_jsonl
    from llm.train import finetune as run_finetune

    base = model_folder(base, "base_model") or base
    _threads(threads)
    _quiet_transformers()
    train, val = [], []
    for folder in data:
        part = read_jsonl(folder / "train.jsonl")
        if not part:
            raise InputDataError(f"{folder / 'train.jsonl'} holds no examples")
        train += part
        val += read_jsonl(folder / "val.jsonl") if (folder / "val.jsonl").exists() else []
    encodings = {e.encoding for e in train}
    hosts = sorted({e.host for e in train})
    if len(encodings) != 1:
        raise InputDataError(f"{', '.join(map(str, data))} mix encodings {sorted(encodings)}")
    cfg = _train_cfg(steps, batch_size, lr, warmup, max_length, seed, save_every)
    result = _run_with_progress(
        "finetune",
        run_finetune,
        base_dir=base,
        pairs=[(e.prompt, e.answer) for e in train],
        out_dir=out,
        encoding=encodings.pop(),
        hosts=hosts,
        cfg=cfg,
        val_pairs=[(e.prompt, e.answer) for e in val],
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        resume=resume,
        device=device,
        dtype=dtype,
        properties=sorted({p for e in train for p in e.targets}),
        property_ranges=property_ranges(train),
        host_property_ranges={h: property_ranges(e for e in train if e.host == h) for h in hosts},
    )
    Console().print(
        f"adapter -> {out}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float))
    )


def _make_generator(
    backend: str, model: str, adapter: str | None, encoding: str, host: Any, device: str, batch_size: int
) -> Any:
    from hts.errors import ConfigError

    if backend == "transformers":
        from llm.generation import TransformersGenerator

        return TransformersGenerator.from_pretrained(
            model, adapter, encoding=encoding, host=host, device=device, batch_size=batch_size
        )
    if backend == "vllm":
        from llm.vllm_backend import VLLMGenerator

        return VLLMGenerator(model, adapter, encoding=encoding, host=host)
    raise ConfigError(f"--backend must be transformers or vllm, got {backend!r}")


def _default_encoding(model: str, adapter: str | None) -> str:
    from llm.model import ModelManifest

    for d in (adapter, model):
        m = ModelManifest.load(d) if d else None
        if m is not None and m.encodings:
            return m.encodings[0]
    return "cif"


@app.command()
def generate(
    model: str = typer.Option(..., help="Base model folder." + DEFAULT_HELP),
    adapter: str | None = typer.Option(None, help="LoRA adapter folder." + DEFAULT_HELP),
    host: str = typer.Option("MoS2", help="Host material."),
    supercell: Supercell = None,
    target: list[str] | None = typer.Option(None, help="Property target, e.g. homo_lumo_gap=1.2 (repeatable)."),
    sweep: str | None = typer.Option(
        None, help="Requested values of one property, e.g. homo_lumo_gap=0.2:1.8:9 (n samples for each)."
    ),
    n: int = typer.Option(16, "-n", help="Samples (per swept value with --sweep)."),
    backend: str = typer.Option("transformers", help="transformers (CPU/GPU) or vllm (GPU)."),
    encoding: str | None = typer.Option(None, help=ENCODING_HELP + " Default: the model's."),
    temperature: float = typer.Option(1.0, help="Sampling temperature."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling: keep the most likely tokens up to this mass."),
    max_defects: int | None = typer.Option(None, help="Defect budget per sample."),
    min_defects: int = typer.Option(1, help="Fewest defects per sample."),
    unconstrained: bool = typer.Option(False, help="Sample without constrained decoding."),
    seed: int = typer.Option(0, help="Random seed (+1 per swept value)."),
    batch_size: int = typer.Option(16, help="Sequences decoded together."),
    device: Device = "cpu",
    out: Path | None = typer.Option(None, help="Write samples as JSONL here."),
    threads: Threads = None,
) -> None:
    """Generate defect configurations conditioned on property targets."""
    from rich.console import Console

    from llm.generation import GenerationRequest

    model = model_folder(model, "base_model") or model
    adapter = model_folder(adapter, "adapter")
    _threads(threads)
    _quiet_transformers()
    h = _host(host, supercell)
    enc = encoding or _default_encoding(model, adapter)
    fixed = _targets(target)
    swept = _sweep(sweep)
    requested = [fixed] if swept is None else [{**fixed, swept[0]: v} for v in swept[1]]
    gen = _make_generator(backend, model, adapter, enc, h, device, batch_size)
    reqs = [
        GenerationRequest(
            h,
            t,
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_defects=max_defects,
            min_defects=min_defects,
            constrained=not unconstrained,
            seed=seed + i,
        )
        for i, t in enumerate(requested)
    ]
    results = gen.generate(reqs)
    console = Console()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as fh:
            for r in results:
                t = requested[r.request_index]
                fh.write(json.dumps({**r.to_json(), "host": h.key, "encoding": enc, "targets": t}) + "\n")
    n_valid = sum(r.valid for r in results)
    for r in results[:10]:
        console.print(str(r.config) if r.valid else f"[red]invalid[/]: {r.error}")
    console.print(f"{n_valid}/{len(results)} valid" + (f" -> {out}" if out else ""))


def _surrogate_predict(path: Path) -> Any:
    from hts.defects import ConfigBatch
    from surrogate.model import SurrogateModel

    model = SurrogateModel.load(path)

    def predict(configs: Any) -> dict[str, Any]:
        pred = model.predict(ConfigBatch.from_configs(list(configs)))
        return {t: pred.mean[:, j] for j, t in enumerate(pred.targets)}

    return predict


@app.command(name="eval")
def evaluate(
    samples: Path = typer.Option(..., help="Samples JSONL from `hts llm generate --out`."),
    train: Path | None = typer.Option(None, help="Training JSONL (train.jsonl) for novelty."),
    surrogate: str | None = typer.Option(None, help="Surrogate model folder for conditioning accuracy." + DEFAULT_HELP),
    out: Path | None = typer.Option(None, help="Write the metrics as JSON here."),
) -> None:
    """Validity, uniqueness, novelty and conditioning accuracy (R2, RMSE, R2_25th, RMSE_25th) of samples."""
    from rich.console import Console

    from hts.errors import InputDataError
    from llm.dataset import iter_jsonl
    from llm.encodings import parse_answer
    from llm.generation import parse_result
    from llm.metrics import canonical_hash_set, evaluate

    recs = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
    if not recs:
        raise InputDataError(f"{samples} holds no samples")
    results, targets = [], []
    for rec in recs:
        h = _host_from_key(rec["host"])
        results.append(
            parse_result(rec.get("request_index", 0), rec["text"], h, rec["encoding"], rec.get("n_tokens", 0))
        )
        targets.append(rec.get("targets", {}))
    train_hashes = None
    if train is not None:
        cfgs = [parse_answer(e.answer, _host_from_key(e.host), e.encoding) for e in iter_jsonl(train)]
        train_hashes = canonical_hash_set(cfgs)
    surrogate = model_folder(surrogate, "surrogate")
    predict = _surrogate_predict(Path(surrogate)) if surrogate is not None else None
    metrics = evaluate(results, targets, train_hashes=train_hashes, predict=predict)
    if out is not None:
        out.write_text(json.dumps(metrics, indent=2) + "\n")
    Console().print_json(json.dumps(metrics))
