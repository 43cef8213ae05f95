"""Canonical form and hash of defect configurations under the pristine supercell's symmetry.

Two configurations related by a symmetry operation of the pristine supercell (a lattice translation
of the supercell combined with a point-group operation) are one candidate. We identify them with a
Zobrist-style set hash:

- every (site, new species) pair of a host gets a fixed 64-bit random number ``Z[site, code]``,
  derived with BLAKE2b from the host key, site and code, so tables are identical on every machine
  and NumPy version;
- the hash of a configuration is the sum (mod 2**64) of ``Z`` over its defects: order-independent;
- the canonical hash is the minimum over all symmetry operations ``g`` of the hash of ``g(config)``,
  and the canonical representative is ``g*(config)`` for the first ``g*`` reaching that minimum.

Equivalent configurations have the same orbit, hence the same canonical hash and representative.
Two inequivalent configurations collide with probability about ``n_ops / 2**64`` per pair (for
10^9 candidates and 768 operations, below 1e-7 over a whole campaign archive).

Everything is vectorised over :class:`~hts.defects.ConfigBatch` rows: a 8x8 MoS2 batch of 10,000
configurations hashes in about 0.3 s on one core (BENCHMARKS.md, "Datasets").
"""

from __future__ import annotations

import hashlib

import numpy as np

from hts.defects import PAD, ConfigBatch
from hts.hosts import Host

_CHUNK_ELEMENTS = 1 << 22  # bound on G * rows * K per chunk (32 MiB of uint64)


def zobrist_table(host: Host) -> np.ndarray:
    """(n_sites, n_codes) uint64 table, reproducible from the host key alone."""
    cached = host._cache.get("zobrist")
    if cached is not None:
        return cached  # type: ignore[return-value]
    out = np.empty((host.n_sites, host.n_codes), dtype=np.uint64)
    for s in range(host.n_sites):
        for c, sp in enumerate(host.species_codes):
            digest = hashlib.blake2b(f"{host.key}|{s}|{sp}".encode(), digest_size=8).digest()
            out[s, c] = np.frombuffer(digest, dtype="<u8")[0]
    host._cache["zobrist"] = out
    return out


def _permuted_tables(host: Host) -> np.ndarray:
    """(G, n_sites + 1, n_codes): ``Z[perm[g, s], c]``, with a zero row at index n_sites for padding."""
    cached = host._cache.get("zobrist_perm")
    if cached is not None:
        return cached  # type: ignore[return-value]
    z = zobrist_table(host)
    perms = host.symmetry_permutations
    table = np.zeros((perms.shape[0], host.n_sites + 1, host.n_codes), dtype=np.uint64)
    table[:, : host.n_sites, :] = z[perms]
    host._cache["zobrist_perm"] = table
    return table


def _orbit_hashes(batch: ConfigBatch, lo: int, hi: int) -> np.ndarray:
    """(G, hi - lo) uint64 hashes of every symmetry image of rows lo..hi."""
    table = _permuted_tables(batch.host)
    s = batch.sites[lo:hi]
    s = np.where(s == PAD, batch.host.n_sites, s)
    c = batch.codes[lo:hi].astype(np.intp)
    return table[:, s, c].sum(axis=2, dtype=np.uint64)


def _chunks(batch: ConfigBatch) -> list[tuple[int, int]]:
    g = batch.host.symmetry_permutations.shape[0]
    k = max(1, batch.sites.shape[1])
    step = max(1, _CHUNK_ELEMENTS // (g * k))
    return [(lo, min(lo + step, len(batch))) for lo in range(0, len(batch), step)]


def plain_hashes(batch: ConfigBatch) -> np.ndarray:
    """(N,) uint64 hash of each row as it is (no symmetry): identity of an exact configuration."""
    z = zobrist_table(batch.host)
    zp = np.vstack([z, np.zeros((1, z.shape[1]), dtype=np.uint64)])
    s = np.where(batch.sites == PAD, batch.host.n_sites, batch.sites)
    return zp[s, batch.codes.astype(np.intp)].sum(axis=1, dtype=np.uint64)


def canonical_hashes(batch: ConfigBatch) -> np.ndarray:
    """(N,) uint64 canonical hashes: equal exactly for symmetry-equivalent rows (up to collisions)."""
    if len(batch) == 0:
        return np.zeros(0, dtype=np.uint64)
    out = np.empty(len(batch), dtype=np.uint64)
    for lo, hi in _chunks(batch):
        out[lo:hi] = _orbit_hashes(batch, lo, hi).min(axis=0)
    return out


def canonicalize(batch: ConfigBatch) -> ConfigBatch:
    """The canonical representative of every row (rows sorted by site)."""
    if len(batch) == 0:
        return batch
    perms = batch.host.symmetry_permutations
    best = np.empty(len(batch), dtype=np.intp)
    for lo, hi in _chunks(batch):
        best[lo:hi] = _orbit_hashes(batch, lo, hi).argmin(axis=0)
    mask = batch.mask
    safe = np.where(mask, batch.sites, 0)
    moved = np.where(mask, perms[best[:, None], safe], PAD).astype(np.int32)
    return ConfigBatch(batch.host, moved, batch.codes.copy()).sorted_rows()


def hash_hex(h: int | np.integer) -> str:
    """The 16-hex-digit text form of a hash, used in file names and the store."""
    return format(int(h), "016x")
