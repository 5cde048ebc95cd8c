"""Figures of a width sweep, drawn from its CSV alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ...io import atomic_write  # noqa: E402
from ..sweep import higher_is_better, metric_columns, read_table  # noqa: E402

FIGURES = ("metric_vs_width", "params_vs_width", "metric_vs_params")


def metric_label(metric: str) -> str:
    """An axis label: ``PSNR``, ``Accuracy``, or for a loss its unit (the GPT's cross-entropy)."""
    if metric == "loss":
        return "Cross-entropy (nats)"
    return metric.upper() if metric == "psnr" else metric.capitalize()


def legend_corner(metric: str) -> str:
    """Where a falling (loss) or rising (accuracy) curve leaves room for the legend."""
    return "lower right" if higher_is_better(metric) else "upper right"


def pareto_frontier(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The widths that score better than every smaller width (higher or lower, as ``metric``
    is better)."""
    df = df.sort_values("width")
    score = df[metric] if higher_is_better(metric) else -df[metric]
    best_before = score.cummax().shift(fill_value=float("-inf"))
    return df[score > best_before]


def marked_widths(df: pd.DataFrame, metric: str | None = None) -> dict[str, int]:
    """Smallest width reaching the best, the median and the lower-quartile score of ``metric``
    (None: the validation column when the table has one, else the test column); "lower" from
    the worse end (for a loss, the upper quartile)."""
    if metric is None:
        val, test = metric_columns(df)
        metric = val or test
    df = df.sort_values("width")
    score = df[metric] if higher_is_better(metric) else -df[metric]  # higher: better
    levels = {"best": score.max(), "median": score.median(), "lower quartile": score.quantile(0.25)}
    return {name: int(df.loc[score >= level, "width"].iloc[0]) for name, level in levels.items()}


def save_figure(fig, path: Path) -> Path:
    """Lay out, write (atomically: an interrupted run never leaves half a PNG) and close."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format=path.suffix[1:]))
    plt.close(fig)
    return path


def sweep_figures(csv_path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the three sweep figures next to ``csv_path`` (or into ``out_dir``)."""
    csv_path = Path(csv_path)
    out_dir = Path(out_dir) if out_dir is not None else csv_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    df = read_table(csv_path).sort_values("width")
    val, metric = metric_columns(df)
    label = metric_label(metric)
    paths = [out_dir / f"{name.replace('metric', metric)}.png" for name in FIGURES]

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if val is not None:
        ax.plot(df["width"], df[val], lw=0.8, color="0.8", label="every width (validation)")
    ax.plot(df["width"], df[metric], lw=1, color="0.5", label="every width (test)")
    front = pareto_frontier(df, metric)
    ax.step(front["width"], front[metric], where="post", color="C0", label="Pareto frontier (test)")
    chosen_on = "validation" if val is not None else "test: no validation column"
    for (name, width), color in zip(marked_widths(df).items(), ("C3", "C2", "C1"), strict=True):
        value = df.loc[df["width"] == width, metric].iloc[0]
        ax.axvline(width, color=color, ls="--", lw=0.8)
        ax.plot(width, value, "o", color=color, label=f"{name}: width {width} (test {value:.4g})")
    ax.plot([], [], " ", label=f"marked widths chosen on {chosen_on}")
    ax.set(xlabel="hidden width kept", ylabel=label, title=f"{label} vs hidden width")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=legend_corner(metric))
    save_figure(fig, paths[0])

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(df["width"], df["params"], color="C0")
    ax.set(xlabel="hidden width kept", ylabel="parameters", title="Parameters vs hidden width")
    ax.grid(alpha=0.3)
    save_figure(fig, paths[1])

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(df["params"], df[metric], ".-", ms=3, color="C0")
    ax.set_xscale("log")
    ax.set(xlabel="parameters (log scale)", ylabel=label, title=f"{label} vs parameters")
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, paths[2])
    return paths


def compare_sweeps(csvs: dict[str, str | Path], out_path: str | Path) -> Path:
    """One figure with the metric-vs-width curve of several sweeps (e.g. structural vs plain)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    label = None
    for name, csv_path in csvs.items():
        df = read_table(csv_path).sort_values("width")
        metric = metric_columns(df)[1]
        label = metric_label(metric)
        ax.plot(df["width"], df[metric], lw=1.2, label=name)
    ax.set(xlabel="hidden width kept", ylabel=label, title=f"{label} vs hidden width")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=legend_corner(metric))
    out_path = Path(out_path)
    save_figure(fig, out_path)
    return out_path


def seed_bands(df: pd.DataFrame, out_path: str | Path, seed_column: str = "seed") -> Path:
    """Mean ± std over seeds of the metric at each width, one band per setting of the other
    override columns that vary (a table from ``aggregate.collect_runs``)."""
    metric = next(
        c
        for c in df.columns
        if c not in ("run", "width", "params", seed_column)
        and not pd.api.types.is_object_dtype(df[c])
        and c in ("accuracy", "psnr")
    )
    measured = ("run", "width", "params", metric, f"val_{metric}", seed_column)
    settings = [  # the overrides that differ between runs; constant ones name no curve
        c for c in df.columns if c not in measured and df[c].nunique() > 1
    ]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    groups = df.groupby(settings) if settings else [((), df)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        stats = group.groupby("width")[metric].agg(["mean", "std", "count"]).reset_index()
        label = ", ".join(f"{c}={v}" for c, v in zip(settings, key, strict=True)) or "all runs"
        line = ax.plot(
            stats["width"], stats["mean"], lw=1.2, label=f"{label} (n={stats['count'].max()})"
        )[0]
        ax.fill_between(
            stats["width"],
            stats["mean"] - stats["std"].fillna(0),
            stats["mean"] + stats["std"].fillna(0),
            color=line.get_color(),
            alpha=0.2,
        )
    label = metric_label(metric)
    ax.set(
        xlabel="hidden width kept",
        ylabel=label,
        title=f"{label} vs hidden width: mean ± std over seeds",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=legend_corner(metric))
    out_path = Path(out_path)
    save_figure(fig, out_path)
    return out_path


def aggregate_figure(table: pd.DataFrame, out_path: str | Path) -> Path | None:
    """An aggregate's figure (``seed_bands``); None for LIIF's tables, whose rows are datasets x
    scales x widths (their notes show them as tables)."""
    return None if "dataset" in table.columns else seed_bands(table, out_path)
