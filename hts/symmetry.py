"""Symmetry of pristine supercells as site permutations, and minimum-image distances.

The space group of the pristine supercell (found by spglib) contains the lattice translations of the
supercell and the point-group operations of the layer. Each operation maps the set of sites onto
itself; we store it as a permutation ``perm[g, s]`` = image of site ``s`` under operation ``g``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hts.errors import InputDataError

if TYPE_CHECKING:  # pragma: no cover
    from hts.hosts import Host


def supercell_permutations(host: Host, symprec: float = 1e-3) -> np.ndarray:
    """(n_ops, n_sites) int32 permutations for every space-group operation of ``host``'s supercell."""
    import spglib

    numbers = np.unique(np.array(host.site_species), return_inverse=True)[1]
    cell = (host.lattice_matrix.tolist(), host.frac_coords.tolist(), numbers.tolist())
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        raise InputDataError(f"spglib found no symmetry for {host.key}")
    rot, trans = sym["rotations"], sym["translations"]
    from scipy.spatial import cKDTree

    wrapped = np.mod(host.frac_coords, 1.0)
    tree = cKDTree(np.mod(wrapped, 1.0) % 1.0, boxsize=1.0)
    images = np.einsum("gij,sj->gsi", rot, host.frac_coords) + trans[:, None, :]
    dist, idx = tree.query(np.mod(images.reshape(-1, 3), 1.0) % 1.0)
    tol = 10 * symprec / float(np.min(np.linalg.norm(host.lattice_matrix, axis=1)))
    if float(np.max(dist)) > tol:
        raise InputDataError(f"a symmetry operation of {host.key} does not map sites onto sites")
    perms = idx.reshape(len(rot), -1).astype(np.int32)
    # Every row must be a permutation that preserves species.
    species = np.array(host.site_species)
    if not all(np.array_equal(species[p], species) for p in perms):
        raise InputDataError(f"a symmetry operation of {host.key} mixes species")
    return np.unique(perms, axis=0)


def minimum_image_distances(frac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """(n, n) float32 distances between sites under the in-plane periodic boundary conditions."""
    df = frac[:, None, :] - frac[None, :, :]
    df[..., :2] -= np.round(df[..., :2])
    best = None
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            cart = (df + np.array([i, j, 0.0])) @ lattice
            d = np.sqrt(np.einsum("abk,abk->ab", cart, cart))
            best = d if best is None else np.minimum(best, d)
    assert best is not None
    return best.astype(np.float32)
