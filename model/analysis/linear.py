"""Linear models in NumPy, for the linear probes (probes.py): closed-form ridge regression and L2-penalised
logistic regression by Newton's method (iteratively reweighted least squares, IRLS).

ridge     w = (ZᵀZ + αI)⁻¹ Zᵀ(y − ȳ) on the standardized columns Z = (X − x̄) / s, an unpenalised intercept;
          α = 0 is ordinary least squares (Hastie, Tibshirani & Friedman, "The Elements of Statistical
          Learning", 2nd ed., § 3.4.1).
logistic  minimises Σ log(1 + e^z) − y z + λ/2 |w|², z = Zw + b: Newton steps w ← w − H⁻¹g with
          g = Zᵀ(σ(z) − y) + λw and H = Zᵀ diag(σ(z)(1 − σ(z))) Z + λI (ibid. § 4.4.1), each step halved
          until the loss does not rise; λ > 0 keeps the weights of separable classes finite.

No scikit-learn: two dozen lines of NumPy do both, and the probes need nothing else from it.
"""

from __future__ import annotations

import numpy as np

#: The logistic probe's L2 penalty on standardized units (keeps separable classes' weights finite).
LOGISTIC_L2 = 1.0


def _standardize(X: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> tuple:
    X = np.asarray(X, np.float64)
    if mean is None or std is None:
        mean, std = X.mean(axis=0), X.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, mean, std


def ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge regression of y (n,) on X (n, W) with an unpenalised intercept: (w (W,), b) minimising
    Σ (y − Xw − b)² + α Σ (w·std)² (the penalty on standardized columns); α = 0 is least squares."""
    Z, mean, std = _standardize(X)  # (n, W)
    yc = y - y.mean()  # (n,)
    A = Z.T @ Z + alpha * np.eye(Z.shape[1])  # (W, W)
    ws = np.linalg.lstsq(A, Z.T @ yc, rcond=None)[0] if alpha == 0 else np.linalg.solve(A, Z.T @ yc)  # (W,)
    w = ws / std  # (W,) back to X's units
    return w, float(y.mean() - mean @ w)


def _loss(Z: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> float:
    z = Z @ w  # (n,)
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (w[1:] @ w[1:]))


class NotConverged(RuntimeError):
    """IRLS stopped at its iteration cap with a step still moving a weight by more than its tolerance."""


def logistic(
    X: np.ndarray,
    y: np.ndarray,
    l2: float = LOGISTIC_L2,
    iters: int = 100,
    start: tuple[np.ndarray, float] | None = None,
) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression of y ∈ {0, 1} (n,) on X (n, W): (w (W,), b) minimising
    Σ log(1 + e^z) − y z + l2/2 Σ (w·std)², z = Xw + b, by Newton steps (IRLS) with a backtracking
    line search, from w = 0 (or ``start``, an earlier (w, b) on the same X: a warm start along a path of
    penalties), until a step moves no weight by 1e-9; ``NotConverged`` if ``iters`` steps do not get there
    (the objective is strictly convex for l2 > 0, so Newton's method with a line search converges)."""
    Zs, mean, std = _standardize(X)
    Z = np.hstack([np.ones((len(Zs), 1)), Zs])  # (n, 1+W), column 0 the intercept
    Z32 = Z.astype(np.float32)
    pen = np.full(Z.shape[1], l2)  # (1+W,)
    pen[0] = 0.0
    w = np.zeros(Z.shape[1])  # (1+W,)
    if start is not None:
        w[1:] = start[0] * std  # (W,) to standardized units
        w[0] = start[1] + mean @ start[0]
    loss = _loss(Z, y, w, l2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -500, 500)))  # (n,) σ(z)
        g = Z.T @ (p - y) + pen * w  # (1+W,) gradient
        R = Z32 * np.sqrt(p * (1 - p)).astype(np.float32)[:, None]  # (n, 1+W) rows scaled by sqrt(σ'(z))
        H = (R.T @ R).astype(np.float64) + np.diag(pen) + 1e-12 * np.eye(len(w))  # (1+W, 1+W) Hessian, summed
        # in float32 (8x faster here; the gradient stays float64, so the optimum reached is the exact one)
        step = np.linalg.solve(H, g)  # (1+W,)
        t = 1.0
        while t > 1e-8:
            new = _loss(Z, y, w - t * step, l2)
            if new <= loss + 1e-12 * abs(loss):
                break
            t /= 2
        w, loss = w - t * step, new
        if np.max(np.abs(t * step)) < 1e-9:
            break
    else:
        raise NotConverged(f"IRLS did not converge in {iters} steps (l2 = {l2:g}, {Z.shape[1] - 1} units)")
    ws = w[1:] / std
    return ws, float(w[0] - mean @ ws)
