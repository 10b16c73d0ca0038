"""One PNG: every headline ratio against its goal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _bars(ax: Any, labels: list[str], values: list[float], title: str, goal: float | None = None,
          higher_is_better: bool = False, neutral: int = 0) -> None:
    """Horizontal bars; the last ``neutral`` bars have no goal (grey)."""
    if not values:
        ax.set_visible(False)
        return
    colors = []
    for i, v in enumerate(values):
        good = goal is None or (v >= goal if higher_is_better else v <= goal)
        colors.append("#999999" if i >= len(values) - neutral else "#4c72b0" if good else "#c44e52")
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", lw=0.8)
    if goal is not None:
        ax.axvline(goal, color="#c44e52", ls="--", lw=1, label=f"goal {goal}")
        ax.legend(fontsize=7, loc="lower right")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)


def draw(results: dict[str, Any], path: Path) -> None:
    sc = results.get("scenarios", {})
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    labels, values = [], []
    for vendor, data in sc.get("inproc", {}).items():
        for case, c in data["cases"].items():
            labels.append(f"{vendor[:2]} {case}")
            values.append(c["ratio"]["median"])
    _bars(axes[0][0], labels, values, "in process: time vs raw ORM lock+update (lower is better)")
    labels, values, p99 = [], [], []
    http = sc.get("http", {})
    for kind in ("gthread", "sync"):
        for case, c in http.get(kind, {}).items():
            if "rps_ratio" in c:
                labels.append(f"{kind} {case}")
                values.append(c["rps_ratio"]["median"])
                p99.append(c["p99_ratio"]["median"])
    _bars(axes[0][1], labels, values, "HTTP: req/s vs bare DRF view (goal >= 0.8)", 0.8, True)
    _bars(axes[1][0], [f"{lab} p99" for lab in labels], p99, "HTTP: p99 vs bare DRF view (goal <= 1.5)", 1.5)
    labels, values = [], []
    for case, c in sc.get("scale", {}).items():
        if isinstance(c, dict) and "cost_ratio" in c:
            labels.append(f"{case}: {c['b']} / {c['a']}")
            values.append(c["cost_ratio"]["median"])
    d = sc.get("directives")
    if d:
        labels.append("directives: drain time, omniman / raw Celery")
        values.append(1 / d["throughput"]["ratio"]["median"])
    _bars(axes[1][1], labels, values, "scale: cost ratio (goal <= 1.2); directives: time ratio (goal <= 2)", 1.2,
          neutral=1 if d else 0)
    m = results.get("machine", {})
    fig.suptitle(f"omniman bench {results.get('date', '')} ({results.get('mode')}) - {m.get('cores')} cores "
                 f"{m.get('cpu')}, Python {m.get('python')}, PostgreSQL {m.get('postgresql')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
