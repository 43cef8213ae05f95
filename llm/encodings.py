"""Text encodings of a defect configuration (the answer part of an example) and their one parser.

Three encodings, all of the same configuration ``host + {site: species}``:

- ``cif`` (the study's format): every pristine site as ``symbol x y z`` (fractional coordinates, 4
  decimals, the host's fixed site order), one per line, the symbol changed for a defect (``VAC`` for
  a vacancy)::

      W 0.0833 0.1667 0.2500
      Mo 0.0833 0.4167 0.2500
      ...

- ``sites``: one symbol per site in the fixed order: ``<sites> W Mo ... Se S VAC </sites>``;
- ``sparse``: only the defects, sorted by site, sites zero-padded to the width of the largest index
  (digits are single tokens): ``<defects> 012:VAC 137:Se </defects>``; the pristine crystal is
  ``<defects> </defects>``.

:func:`parse_answer` turns any of them back into a :class:`~hts.defects.DefectConfiguration` through
one code path (each encoding only says which symbol it puts on which site) and never crashes on
arbitrary text: it returns a configuration or raises :class:`~hts.errors.GenerationError` naming
what was wrong.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Literal

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, DefectError, GenerationError
from hts.hosts import VAC, Host

Encoding = Literal["cif", "sites", "sparse"]
ENCODINGS: tuple[str, ...] = ("cif", "sites", "sparse")

SITES_OPEN, SITES_CLOSE = "<sites>", "</sites>"
SPARSE_OPEN, SPARSE_CLOSE = "<defects>", "</defects>"
COORD_DECIMALS = 4


def check_encoding(encoding: str) -> str:
    """``encoding`` if known, else :class:`ConfigError` listing the known ones."""
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    return encoding


def site_width(host: Host) -> int:
    """Digits of a site index in the ``sparse`` encoding (3 for 192 sites)."""
    return len(str(host.n_sites - 1))


def _fmt(x: float) -> str:
    text = f"{round(float(x), COORD_DECIMALS) + 0.0:.{COORD_DECIMALS}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


@functools.lru_cache(maxsize=64)
def _coord_strings(host: Host) -> tuple[str, ...]:
    out = tuple(" ".join(_fmt(x) for x in row) for row in host.frac_coords)
    if len(set(out)) != len(out):  # pragma: no cover - all bundled hosts are fine at 4 decimals
        raise ConfigError(f"{host.key}: two sites share their coordinates at {COORD_DECIMALS} decimals")
    return out


def coord_strings(host: Host) -> tuple[str, ...]:
    """``"x y z"`` of every pristine site as the ``cif`` encoding writes it."""
    return _coord_strings(host)


@functools.lru_cache(maxsize=64)
def _coord_index(host: Host) -> dict[str, int]:
    return {c: i for i, c in enumerate(_coord_strings(host))}


def check_allowed(host: Host, allowed: np.ndarray | None) -> np.ndarray:
    """``allowed`` (n_sites, n_codes) bool, a subset of ``host.allowed`` (a campaign's narrower rules),
    or ``host.allowed`` itself when ``None``."""
    if allowed is None:
        return host.allowed
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape != host.allowed.shape:
        raise ConfigError(f"allowed mask has shape {mask.shape}, {host.key} needs {host.allowed.shape}")
    if (mask & ~host.allowed).any():
        raise ConfigError(f"allowed mask permits changes the rules of {host.key} forbid")
    return mask


def site_options(host: Host, site: int, allowed: np.ndarray | None = None) -> tuple[str, ...]:
    """Symbols site ``site`` may carry in an answer: its pristine element, then the allowed new species
    (``allowed``: an optional narrower (n_sites, n_codes) mask than the host's rules)."""
    mask = host.allowed if allowed is None else allowed
    return (host.site_species[site], *(host.species_codes[c] for c in np.flatnonzero(mask[site])))


# -- encoding --------------------------------------------------------------------------------------
def encode_answer(config: DefectConfiguration, encoding: str) -> str:
    """The answer text of ``config`` in ``encoding`` (canonical form: what the parser reads back)."""
    check_encoding(encoding)
    host = config.host
    if encoding == "sparse":
        w = site_width(host)
        body = "".join(f" {s:0{w}d}:{sp}" for s, sp in config.defects)
        return f"{SPARSE_OPEN}{body} {SPARSE_CLOSE}"
    species = config.species_list()
    if encoding == "sites":
        return f"{SITES_OPEN} {' '.join(species)} {SITES_CLOSE}"
    coords = _coord_strings(host)
    return "".join(f"{sp} {c}\n" for sp, c in zip(species, coords, strict=True))


# -- parsing ---------------------------------------------------------------------------------------
def detect_encoding(text: str) -> str:
    """The encoding an answer is written in, from its first token (``cif`` when untagged)."""
    head = text.lstrip()
    if head.startswith(SPARSE_OPEN):
        return "sparse"
    if head.startswith(SITES_OPEN):
        return "sites"
    return "cif"


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def _tagged_body(text: str, open_tag: str, close_tag: str) -> str:
    body = text.strip()
    if not body.startswith(open_tag):
        raise GenerationError(f"answer does not start with {open_tag}: {_short(body)}")
    end = body.find(close_tag)
    if end < 0:
        raise GenerationError(f"answer has no closing {close_tag} (truncated?)")
    if body[end + len(close_tag) :].strip():
        raise GenerationError(f"text after {close_tag}: {_short(body[end + len(close_tag) :].strip())}")
    return body[len(open_tag) : end]


_SPARSE_ITEM = re.compile(r"(\d+):([A-Za-z]+)")


def _read_sparse(text: str, host: Host) -> Iterable[tuple[int, str]]:
    for item in _tagged_body(text, SPARSE_OPEN, SPARSE_CLOSE).split():
        m = _SPARSE_ITEM.fullmatch(item)
        if m is None:
            raise GenerationError(f"sparse item {_short(item)} is not 'site:symbol'")
        yield int(m.group(1)), m.group(2)


def _read_sites(text: str, host: Host) -> Iterable[tuple[int, str]]:
    symbols = _tagged_body(text, SITES_OPEN, SITES_CLOSE).split()
    if len(symbols) != host.n_sites:
        raise GenerationError(f"{len(symbols)} symbols for the {host.n_sites} sites of {host.key}")
    return enumerate(symbols)


def _read_cif(text: str, host: Host) -> Iterable[tuple[int, str]]:
    index = _coord_index(host)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != host.n_sites:
        raise GenerationError(f"{len(lines)} lines for the {host.n_sites} sites of {host.key}")
    for k, line in enumerate(lines):
        parts = line.split()
        if len(parts) != 4:
            raise GenerationError(f"line {k + 1} {_short(line)} is not 'symbol x y z'")
        key = " ".join(parts[1:])
        site = index.get(key)
        if site is None:
            site = _nearest_site(host, parts[1:], k)
        yield site, parts[0]


def _nearest_site(host: Host, coords: list[str], k: int, tol: float = 2e-3) -> int:
    try:
        xyz = np.array([float(c) for c in coords])
    except ValueError:
        raise GenerationError(f"line {k + 1}: coordinates {' '.join(coords)!r} are not numbers") from None
    if not np.all(np.isfinite(xyz)):
        raise GenerationError(f"line {k + 1}: coordinates are not finite")
    d = host.frac_coords - xyz
    d[:, :2] -= np.round(d[:, :2])
    dist = np.abs(d).max(axis=1)
    site = int(np.argmin(dist))
    if dist[site] > tol:
        raise GenerationError(f"line {k + 1}: coordinates {' '.join(coords)} match no site of {host.key}")
    return site


_READERS = {"sparse": _read_sparse, "sites": _read_sites, "cif": _read_cif}


def parse_answer(text: str, host: Host, encoding: str | None = None) -> DefectConfiguration:
    """The configuration an answer describes; :class:`GenerationError` naming the first problem.

    ``encoding`` ``None`` detects it from the text. Every encoding reads as ``(site, symbol)`` pairs;
    a symbol equal to the site's pristine element means no defect. A site named twice, a site out of
    range or a symbol the host's rules do not allow on that site is an error.
    """
    if not isinstance(text, str):
        raise GenerationError(f"answer is {type(text).__name__}, not text")
    enc = detect_encoding(text) if encoding is None else check_encoding(encoding)
    seen: set[int] = set()
    defects: list[tuple[int, str]] = []
    for site, symbol in _READERS[enc](text, host):
        if not 0 <= site < host.n_sites:
            raise GenerationError(f"site {site} is out of range for {host.key} (0..{host.n_sites - 1})")
        if site in seen:
            raise GenerationError(f"site {site} is written twice")
        seen.add(site)
        if symbol != host.site_species[site]:
            defects.append((site, symbol))
    try:
        return DefectConfiguration.from_mapping(host, defects)
    except DefectError as exc:
        raise GenerationError(f"not an allowed configuration: {exc}") from None


def encode(config: DefectConfiguration, encoding: str, targets: dict[str, float] | None = None) -> tuple[str, str]:
    """``(prompt, answer)`` of ``config`` in ``encoding`` conditioned on ``targets``."""
    from llm.prompts import build_prompt

    return build_prompt(config.host, targets, encoding), encode_answer(config, encoding)


def all_symbols(hosts: Iterable[Host]) -> list[str]:
    """Every symbol an answer can contain for ``hosts`` (pristine elements, new species, VAC)."""
    out = dict.fromkeys([VAC])
    for h in hosts:
        out.update(dict.fromkeys(h.site_species))
        out.update(dict.fromkeys(h.species_codes))
    return list(out)
