"""Instruction dataset: (prompt, answer) examples from any 2DMD-layout dataset, as JSONL.

Per structure, ``n_augment`` examples: the first in the structure's own orientation, the others moved
by random symmetry operations of the pristine supercell (the same defect pattern on equivalent sites,
so the labels stay valid); each example conditions on a random non-empty subset of the structure's
labelled properties (or none: unconditional, when it has none or with ``p_unconditional``). The
train/validation split is by structure, so no augmented copy of a validation structure is trained on.

Each JSONL line: ``id, structure_id, split, encoding, host, op, targets, prompt, answer, source``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, InputDataError
from hts.hosts import Host
from llm.encodings import check_encoding, encode_answer
from llm.prompts import build_prompt
from llm.properties import STUDY_PROPERTIES, canonical_property

logger = logging.getLogger(__name__)

DEFAULT_PROPERTIES = STUDY_PROPERTIES


class DatasetLike(Protocol):
    """What the builder needs of a dataset (:class:`hts.twodmd.DefectDataset` fits)."""

    host: Host
    ids: list[str]
    configs: list[DefectConfiguration]
    table: Any  # pandas DataFrame indexed by _id


@dataclass
class InstructionExample:
    """One training example."""

    id: str
    structure_id: str
    split: str  # "train" or "val"
    encoding: str
    host: str  # host key, e.g. "MoS2-8x8x1"
    op: int  # symmetry operation applied (index into host.symmetry_permutations)
    targets: dict[str, float] = field(default_factory=dict)
    prompt: str = ""
    answer: str = ""
    source: str = "label"  # "label": the dataset's own labels; "surrogate": pseudo-labels (llm.pseudo_labels)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def split_structures(ids: Sequence[str], val_fraction: float, seed: int) -> set[str]:
    """Validation structure ids: a seeded, order-independent choice (hash of seed and id)."""
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def key(sid: str) -> int:
        return int.from_bytes(hashlib.blake2b(f"{seed}|{sid}".encode(), digest_size=8).digest(), "little")

    ranked = sorted(set(ids), key=key)
    n_val = round(val_fraction * len(ranked))
    if val_fraction > 0 and len(ranked) >= 2:
        n_val = min(max(n_val, 1), len(ranked) - 1)
    return set(ranked[:n_val])


def identity_op(host: Host) -> int:
    """Index of the identity in ``host.symmetry_permutations``."""
    perms = host.symmetry_permutations
    hits = np.flatnonzero((perms == np.arange(host.n_sites)).all(axis=1))
    return int(hits[0])


def build_examples(
    dataset: DatasetLike,
    encoding: str,
    *,
    n_augment: int = 4,
    properties: Iterable[str] = DEFAULT_PROPERTIES,
    val_fraction: float = 0.1,
    p_unconditional: float = 0.0,
    seed: int = 0,
    source: str = "label",
) -> list[InstructionExample]:
    """Instruction examples of every structure of ``dataset`` (see the module docstring).

    ``source`` is recorded on every example (``"surrogate"`` for :mod:`llm.pseudo_labels` sets).
    """
    check_encoding(encoding)
    if n_augment < 1:
        raise ConfigError(f"n_augment must be >= 1, got {n_augment}")
    props = [canonical_property(p) for p in properties]
    host = dataset.host
    table = dataset.table
    present = [p for p in props if p in table.columns]
    missing = sorted(set(props) - set(present))
    if missing:
        logger.info("dataset has no column(s) %s; they are never conditioned on", ", ".join(missing))
    values = table.reindex(list(dataset.ids))[present].to_numpy(dtype=float) if present else None
    val_ids = split_structures(dataset.ids, val_fraction, seed)
    rng = np.random.default_rng(seed)
    ident = identity_op(host)
    n_ops = host.symmetry_permutations.shape[0]
    out: list[InstructionExample] = []
    for row, (sid, cfg) in enumerate(zip(dataset.ids, dataset.configs, strict=True)):
        if cfg.host != host:
            raise InputDataError(f"structure {sid} is on {cfg.host.key}, the dataset on {host.key}")
        labelled = [] if values is None else [p for p, v in zip(present, values[row], strict=True) if np.isfinite(v)]
        ops = [ident]
        if n_augment > 1:
            others = rng.choice(n_ops, size=min(n_augment - 1, n_ops), replace=n_augment - 1 > n_ops)
            ops.extend(int(o) for o in others)
        for k, op in enumerate(ops):
            moved = cfg if op == ident else cfg.transformed(op)
            targets: dict[str, float] = {}
            if labelled and values is not None and rng.random() >= p_unconditional:
                m = int(rng.integers(1, len(labelled) + 1))
                chosen = set(rng.choice(len(labelled), size=m, replace=False).tolist())
                targets = {p: float(values[row][present.index(p)]) for i, p in enumerate(labelled) if i in chosen}
            out.append(
                InstructionExample(
                    id=f"{sid}-{k}",
                    structure_id=sid,
                    split="val" if sid in val_ids else "train",
                    encoding=encoding,
                    host=host.key,
                    op=op,
                    targets=targets,
                    prompt=build_prompt(host, targets, encoding),
                    answer=encode_answer(moved, encoding),
                    source=source,
                )
            )
    logger.info(
        "built %d %s examples from %d structures (%d validation structures)",
        len(out),
        encoding,
        len(dataset.ids),
        len(val_ids),
    )
    return out


def property_ranges(examples: Iterable[InstructionExample]) -> dict[str, list[float]]:
    """``{property: [min, max]}`` over the values the examples' prompts condition on."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for ex in examples:
        for p, v in ex.targets.items():
            lo[p] = min(lo.get(p, v), v)
            hi[p] = max(hi.get(p, v), v)
    return {p: [float(lo[p]), float(hi[p])] for p in sorted(lo)}


def write_jsonl(examples: Iterable[InstructionExample], path: str | Path) -> int:
    """Write examples (atomically); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("w") as fh:
        for ex in examples:
            fh.write(ex.to_json() + "\n")
            n += 1
    tmp.replace(path)
    return n


def iter_jsonl(path: str | Path) -> Iterator[InstructionExample]:
    """Examples of a JSONL file; :class:`InputDataError` naming the line on a bad record."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"instruction dataset {path} does not exist; build it with `hts llm dataset`")
    fields = set(InstructionExample.__dataclass_fields__)
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                yield InstructionExample(**{k: v for k, v in rec.items() if k in fields})
            except (ValueError, TypeError) as exc:
                raise InputDataError(f"{path}:{lineno}: not an instruction example ({exc})") from None


def read_jsonl(path: str | Path, split: str | None = None) -> list[InstructionExample]:
    """All examples of a JSONL file (optionally only one split)."""
    return [ex for ex in iter_jsonl(path) if split is None or ex.split == split]


def write_splits(examples: Sequence[InstructionExample], out_dir: str | Path, meta: dict[str, Any]) -> dict[str, Path]:
    """``train.jsonl``, ``val.jsonl`` and ``manifest.json`` (counts, settings) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "val"):
        paths[split] = out_dir / f"{split}.jsonl"
        write_jsonl((e for e in examples if e.split == split), paths[split])
    counts = {s: sum(e.split == s for e in examples) for s in ("train", "val")}
    sources = {src: sum(e.source == src for e in examples) for src in sorted({e.source for e in examples})}
    structures = {s: len({e.structure_id for e in examples if e.split == s}) for s in ("train", "val")}
    manifest = {**meta, "examples": counts, "structures": structures, "examples_by_source": sources}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths
