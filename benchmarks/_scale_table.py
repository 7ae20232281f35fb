"""How ``scale.py`` shows growth: a table of each figure per size, and a plot.

Why apart: the goal is "linear or better", which is a statement about ratios between sizes, not
about one figure; this computes ``(f(n) / f(n0)) / (n / n0)`` against the smallest size (1.0 is
linear, below is better) and draws the figures on log-log axes, where linear growth is a line of
slope 1. matplotlib is optional (the ``bench`` extra): without it the plot is skipped, said so.
"""

from __future__ import annotations

from pathlib import Path

#: (key in the results, label): the figures that grow with the size
FIGURES = [
    ("first_wall_s", "first reconcile, wall (s)"),
    ("first_cpu_s", "first reconcile, operator CPU (s)"),
    ("noop_cpu_s", "no-op interval, operator CPU (s)"),
    ("noop_reads", "no-op interval, API reads"),
    ("change_wall_s", "one changed file, wall (s)"),
    ("change_cpu_s", "one changed file, operator CPU (s)"),
    ("peak_rss_mb", "operator peak RSS (MB)"),
]


def growth(results: list[dict[str, float]], key: str) -> list[float]:
    """Each size's figure grown from the smallest's, divided by how much the size grew."""
    base = results[0]
    out = []
    for r in results:
        size = r["objects"] / base["objects"]
        out.append((r[key] / base[key]) / size if base[key] else float("nan"))
    return out


def print_table(results: list[dict[str, float]]) -> None:
    """Markdown: one row per figure, a column per size, then growth vs linear per larger size."""
    sizes = [int(r["objects"]) for r in results]
    head = ["figure", *(f"{n:,} objects" for n in sizes)]
    head += [f"growth {sizes[0]:,} -> {n:,} vs linear" for n in sizes[1:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key, label in FIGURES:
        cells = [label, *(f"{r[key]:.3g}" for r in results)]
        cells += [f"{g:.2f}" for g in growth(results, key)[1:]]
        print("| " + " | ".join(cells) + " |")
    for key in ("noop_writes", "noop_decryptions", "noop_unwraps"):
        cells = [f"no-op intervals, {key[5:]} (all runs)", *(f"{r[key]:.0f}" for r in results)]
        cells += [""] * (len(sizes) - 1)
        print("| " + " | ".join(cells) + " |")


def plot(results: list[dict[str, float]], path: Path) -> str:
    """Draw the figures per size into ``path``; returns what was done, for the output."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    sizes = [r["objects"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in FIGURES:
        if key in ("noop_reads", "peak_rss_mb"):
            continue
        left.plot(sizes, [r[key] for r in results], marker="o", label=label)
    if len(sizes) > 1:
        base = results[0]["first_cpu_s"]
        left.plot(
            sizes, [base * n / sizes[0] for n in sizes], "k:", label="linear (from first CPU)"
        )
    left.set(xscale="log", yscale="log", xlabel="objects (Secrets + ConfigMaps)",
             ylabel="seconds", title="time per figure")  # fmt: skip
    left.legend(fontsize=7)
    right.plot(sizes, [r["peak_rss_mb"] for r in results], marker="o", label="peak RSS (MB)")
    right.axhline(300, color="r", linestyle="--", label="goal 300 MB")
    right.set(xscale="log", xlabel="objects", ylabel="MB", title="operator peak RSS")
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return f"plot written to {path}"
