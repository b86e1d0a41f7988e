"""Principal components of population states (the trajectories' and the fixed points' views)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PCA", "fit_pca"]


@dataclass
class PCA:
    """A fitted principal-component basis."""

    mean: np.ndarray
    """(N,) the centre."""
    components: np.ndarray
    """(k, N) orthonormal rows, by decreasing variance."""
    explained_variance_ratio: np.ndarray
    """(k,) fraction of the total variance along each component."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., N) -> (..., k)."""
        return (np.asarray(x, dtype=float) - self.mean) @ self.components.T


def fit_pca(states: np.ndarray, n_components: int = 3) -> PCA:
    """PCA of ``states (M, N)`` by SVD; ``n_components`` is capped at min(M, N)."""
    states = np.asarray(states, dtype=float)
    if states.ndim != 2 or states.shape[0] < 2:
        raise ValueError(f"states must be (M >= 2, N), got shape {states.shape}")
    mean = states.mean(0)
    _, singular, vt = np.linalg.svd(states - mean, full_matrices=False)
    k = min(n_components, vt.shape[0])
    variance = singular**2
    total = variance.sum()
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    return PCA(mean, vt[:k], ratio)
