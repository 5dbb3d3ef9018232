"""Loss and validation curves of a training run as one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs in CI and on robots without a display
import matplotlib.pyplot as plt


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Plot training loss terms, validation CD-L1 / F1 and, where the history has them,
    the coarse stage's health (coarse spread, posterior σ) per epoch into ``path``."""
    epochs = [h["epoch"] + 1 for h in history]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for key in ("total", "cd_coarse_raw", "cd_fine"):
        if all(key in h for h in history):
            axes[0].plot(epochs, [h[key] for h in history], marker="o", label=key)
    axes[0].set(title="training loss", xlabel="epoch", yscale="log")
    axes[0].legend()
    axes[1].plot(epochs, [h["val_cd_l1_mm"] for h in history], marker="o", color="C3")
    axes[1].set(title="validation CD-L1 (mm)", xlabel="epoch")
    axes[2].plot(epochs, [h["val_f1_1mm"] for h in history], marker="o", color="C2")
    axes[2].set(title="validation F1 @ 1 mm", xlabel="epoch", ylim=(0, 1))
    for key in ("val_coarse_spread", "val_q_sigma"):
        if all(key in h for h in history):
            axes[3].plot(epochs, [h[key] for h in history], marker="o", label=key)
    axes[3].set(title="coarse stage health", xlabel="epoch", yscale="log")
    if axes[3].lines:
        axes[3].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
