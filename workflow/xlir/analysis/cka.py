"""Linear CKA (centered kernel alignment, Kornblith et al. 2019) between two representations
of the same n examples: how much a layer's geometry moved during fine-tuning.

    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F),   Xc, Yc column-centred.

It is 1 for identical representations and invariant to orthogonal transforms and isotropic
scaling of either side (not to arbitrary invertible linear maps). The feature-space form costs
O(n d^2), so 2,200 texts x 384 dimensions take milliseconds."""

from __future__ import annotations

import numpy as np


def _centered(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (n, d) matrix, got shape {x.shape}")
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of (n, d1) and (n, d2) representations of the same n examples (rows paired).
    NaN when either side is constant (zero variance)."""
    if len(x) != len(y):
        raise ValueError(f"CKA compares the same examples: {len(x)} rows against {len(y)}")
    xc, yc = _centered(x), _centered(y)
    cross = np.linalg.norm(yc.T @ xc) ** 2
    norms = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(cross / norms) if norms > 0 else float("nan")


def layerwise_cka(run: np.ndarray, base: np.ndarray) -> list[float]:
    """CKA per layer of (layers, n, d) stacks of the same texts."""
    if run.shape[:2] != base.shape[:2]:
        raise ValueError(f"layer stacks differ: {run.shape} vs {base.shape}")
    return [linear_cka(r, b) for r, b in zip(run, base)]
