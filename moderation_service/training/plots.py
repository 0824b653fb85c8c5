"""PNG plots a moderator can read to choose thresholds: PR curve, reliability diagram, histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_plots"]


def save_plots(
    name: str, labels: np.ndarray, probs: np.ndarray, threshold: float, out_dir: Path, mark: tuple[float, float | None] | None = None
) -> Path:
    """PR curve, reliability and histogram; ``mark``: (recall, precision) of the shipped threshold, drawn on the PR curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if 0 < labels.sum() < len(labels):
        precision, recall, _ = precision_recall_curve(labels, probs)
        axes[0].plot(recall, precision)
    if mark is not None and mark[1] is not None:
        axes[0].plot([mark[0]], [mark[1]], marker="o", color="red", label=f"threshold {threshold:.2f}")
        axes[0].legend(loc="lower left")
    axes[0].set(title=f"{name}: precision-recall", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))

    edges = np.linspace(0, 1, 11)
    centres, observed = [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (probs >= low) & (probs < high if high < 1 else probs <= high)
        if in_bin.any():
            centres.append(probs[in_bin].mean())
            observed.append(labels[in_bin].mean())
    axes[1].plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes[1].plot(centres, observed, marker="o")
    axes[1].set(title="reliability (0.5 should mean 50 %)", xlabel="predicted probability", ylabel="observed rate")

    axes[2].hist([probs[labels == 0], probs[labels == 1]], bins=20, range=(0, 1), label=["negative", "positive"], stacked=False)
    axes[2].axvline(threshold, color="red", linestyle=":", label=f"shipped threshold {threshold:.2f}")
    axes[2].set(title="score histogram", xlabel="score", ylabel="posts", yscale="log")
    axes[2].legend()
    fig.tight_layout()
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
