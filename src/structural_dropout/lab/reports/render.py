"""Tables of the README and the results notes, generated from the committed CSVs.

A document marks each generated table with a pair of comments::

    <!-- table: mnist_widths -->
    | ... the generated table ... |
    <!-- /table -->

``render_text`` replaces what stands between them with ``TABLES[name](results_dir)``;
``scripts/render.py`` (``make render``) does it for every document, and its ``--check`` mode
(run by the tests) fails when a document's table and the files disagree. Widths quoted from a
sweep (a best width) are chosen on its validation column and reported on its test column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from statistics import geometric_mean

import pandas as pd

from ..sweep import metric_columns, read_table
from .compare import budget_table, paired_gaps
from .plots import marked_widths
from .tuning import SIZE_KNOBS

# The comparison's goal: a one-run method within this many accuracy points of each reference:
# separately trained models at every width >= 16, plain training at full width.
GAP_GOALS = {"independent": 0.5, "none": 0.2}

BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def count(value: float) -> str:
    """Parameters the way the tables write them: 807, 55 k, 1.41 M."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e3:.1f} k" if value >= 1e4 else f"{value:,.0f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def at_widths(table: pd.DataFrame, column: str, widths: Sequence[int]) -> list[float]:
    """``column`` at each of ``widths`` (each must be in the table: no silent gaps)."""
    indexed = table.set_index("width")[column]
    missing = [w for w in widths if w not in indexed.index]
    if missing:
        raise KeyError(f"widths {missing} are not in the sweep")
    return [float(indexed[w]) for w in widths]


def best_on_validation(table: pd.DataFrame) -> pd.Series:
    """The smallest width with the best validation score (its test score reported beside)."""
    if metric_columns(table)[0] is None:
        raise ValueError("the sweep has no validation column to choose a width on")
    best = marked_widths(table)["best"]  # the figures' "best" mark: the same choice
    return table.loc[table["width"] == best].iloc[0]


def sweep_rows(sweeps: dict[str, Path], widths: Sequence[int], digits: int = 1) -> list[list[str]]:
    """Per named sweep, its test (and, where it has one, validation) metric at ``widths``."""
    rows = []
    for name, path in sweeps.items():
        table = read_table(path)
        val, test = metric_columns(table)
        rows.append(
            [f"{name}: test", *map(lambda v: percent(v, digits), at_widths(table, test, widths))]
        )
        if val is not None:
            rows.append(
                [
                    f"{name}: validation",
                    *(percent(v, digits) for v in at_widths(table, val, widths)),
                ]
            )
    return rows


def mnist_widths(results: Path) -> str:
    widths = [8, 16, 32, 64, 128, 256]
    sweeps = {
        "structural dropout, p=1": results / "mnist" / "sweep.csv",
        "plain training, truncated": results / "mnist" / "none" / "sweep.csv",
    }
    params = at_widths(read_table(sweeps["structural dropout, p=1"]), "params", widths)
    rows = [*sweep_rows(sweeps, widths), ["parameters", *map(count, params)]]
    return markdown(["width", *map(str, widths)], rows)


def mnist_facts(results: Path) -> str:
    """The numbers the MNIST prose quotes, each with the file it comes from."""
    ours = read_table(results / "mnist" / "sweep.csv")
    plain = read_table(results / "mnist" / "none" / "sweep.csv")
    best = best_on_validation(ours)
    full = ours["width"].max()
    share = at_widths(ours, "params", [64])[0] / at_widths(ours, "params", [full])[0]
    rows = [
        [
            "best width on validation (smallest reaching the best)",
            f"{int(best['width'])}: validation {percent(best['val_accuracy'], 2)}, "
            f"test {percent(best['accuracy'], 2)}",
            "`mnist/sweep.csv`",
        ],
        [
            "width 64: parameters, share of the full model",
            f"{count(at_widths(ours, 'params', [64])[0])}, {percent(share)}",
            "`mnist/sweep.csv`",
        ],
        [
            "full width, test: structural dropout vs plain",
            f"{percent(at_widths(ours, 'accuracy', [full])[0], 2)} vs "
            f"{percent(at_widths(plain, 'accuracy', [full])[0], 2)}",
            "`mnist/sweep.csv`, `mnist/none/sweep.csv`",
        ],
    ]
    return markdown(["quantity", "value", "file"], rows)


def mnist_seeds(results: Path) -> str:
    table = pd.read_csv(results / "mnist" / "seeds.csv")
    widths = [16, 32, 64, 256]
    rows = []
    for p, group in table.groupby("p"):
        stats = group.groupby("width")["accuracy"].agg(["mean", "std", "count"])
        cells = [
            f"{100 * stats.loc[w, 'mean']:.2f} ± {100 * stats.loc[w, 'std']:.2f}%" for w in widths
        ]
        rows.append([f"{p:g}" + (" (plain)" if p == 0 else ""), *cells, int(stats["count"].min())])
    return markdown(["p", *(f"width {w}" for w in widths), "seeds"], rows)


def _accuracy_widths(path: Path, widths: Sequence[int], digits: int = 1) -> str:
    """One sweep's validation and test accuracy and parameters at ``widths``."""
    params = at_widths(read_table(path), "params", widths)
    rows = [*sweep_rows({"accuracy": path}, widths, digits), ["parameters", *map(count, params)]]
    return markdown(["width", *map(str, widths)], rows)


def _full_width(table: pd.DataFrame) -> pd.Series:
    return table.loc[table["width"] == table["width"].max()].iloc[0]


def pointnet_widths(results: Path) -> str:
    widths = [1, 5, 9, 17, 33, 65, 129, 257, 512]  # the cpu profile sweeps every 4th width
    return _accuracy_widths(results / "pointnet" / "sweep.csv", widths)


LENET5_BUDGET = 30_200  # issue #18: 1/14.3 of LeNet-5's 431,080 parameters (Drop Pruning's 14.3x)


def lenet5_widths(results: Path) -> str:
    widths = [1, 25, 51, 101, 127, 251, 500]  # the cpu profile sweeps every odd width and 500
    return _accuracy_widths(results / "lenet5" / "sweep.csv", widths, 2)


def lenet5_facts(results: Path) -> str:
    """The committed LeNet-5 run: provenance, full width, the widest width within Drop
    Pruning's budget (a size, not a choice) and the best width on validation."""
    folder = results / "lenet5"
    table = read_table(folder / "sweep.csv")
    best = best_on_validation(table)
    full = _full_width(table)
    within = table.loc[table["params"] <= LENET5_BUDGET].sort_values("width").iloc[-1]

    def scores(row: pd.Series) -> str:
        return (f"validation {percent(row['val_accuracy'], 2)}, "
                f"test {percent(row['accuracy'], 2)}, {row['params']:,.0f} parameters")  # fmt: skip

    rows = [
        *_run_rows(folder / "run.json"),
        ["full width (500)", scores(full)],
        [f"widest width within {LENET5_BUDGET:,} parameters: {int(within['width'])}",
         scores(within)],
        ["best width on validation (smallest reaching the best)",
         f"{int(best['width'])}: {scores(best)}"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`lenet5/run.json`, `sweep.csv`)"], rows)


def _commit(run: dict) -> str:
    """``abc1234`` or ``abc1234 (dirty)``: a run's commit as its provenance records it."""
    return run["commit"][:7] + (" (dirty)" if run["dirty"] else "")


def _hardware(run: dict) -> str:
    hardware = run["hardware"]
    return (f"{hardware['processor']}, {hardware['cpu_count']} cores, "
            f"{hardware['torch_threads']} threads")  # fmt: skip


def _run_rows(run_file: Path) -> list[list[str]]:
    """A single run's provenance (its ``run.json``): commit, seed, hardware, threads, times."""
    run = json.loads(run_file.read_text())
    return [
        ["commit, seed", f"{_commit(run)}, seed {run['seed']}"],
        ["hardware, torch threads", _hardware(run)],
        ["training, sweep", f"{run['train_seconds'] / 60:.1f} min, "
                            f"{(run.get('sweep_seconds') or 0) / 60:.1f} min"],
    ]  # fmt: skip


def pointnet_facts(results: Path) -> str:
    """The committed PointNet run: its provenance and what the prose quotes from its sweep."""
    folder = results / "pointnet"
    table = read_table(folder / "sweep.csv")
    best = best_on_validation(table)
    full = _full_width(table)
    rows = [
        *_run_rows(folder / "run.json"),
        ["best width on validation (smallest reaching the best)",
         f"{int(best['width'])}: validation {percent(best['val_accuracy'])}, "
         f"test {percent(best['accuracy'])}, {count(best['params'])} parameters"],
        ["full width", f"validation {percent(full['val_accuracy'])}, "
                       f"test {percent(full['accuracy'])}, {count(full['params'])} parameters"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`pointnet/run.json`, `sweep.csv`)"], rows)


def pointnet_trials(results: Path) -> str:
    """``make trials-pointnet``: each knob setting's validation accuracy at the trial widths,
    the chosen one (best mean over those widths) marked. Test accuracy is not shown: the
    trials choose, they do not report."""
    table = pd.read_csv(results / "pointnet" / "trials.csv")
    knobs = ["rescale", "grad_clip"]
    full = table["width"].max()
    widths = sorted(table["width"].unique())
    trials = table.astype({"grad_clip": object}).fillna({"grad_clip": "none"})
    trials = trials.groupby(knobs, sort=False)
    mean = trials["val_accuracy"].mean()
    rows = []
    for key, group in trials:
        scores = group.set_index("width")["val_accuracy"]
        rows.append(
            [f"{key[0]}", f"{key[1]}", *(percent(scores[w], 1) for w in widths),
             percent(mean[key], 2), "✓" if key == mean.idxmax() else ""]
        )  # fmt: skip
    header = ["`dropout.rescale`", "`trainer.grad_clip`",
              *(f"width {w}" + (" (full)" if w == full else "") for w in widths),
              "mean", "chosen"]  # fmt: skip
    return markdown(header, rows)


def pointnet_shared_bn(results: Path) -> str:
    widths = [1, 9, 17, 33, 65, 129, 257, 512]
    sweeps = {
        "recalibrated per width": results / "pointnet" / "sweep.csv",
        "shared statistics": results / "pointnet" / "shared_bn" / "sweep.csv",
    }
    return markdown(["width", *map(str, widths)], sweep_rows(sweeps, widths))


def _part(table: pd.DataFrame, dataset: str, scale: int) -> pd.DataFrame:
    """The rows of one dataset and scale of a LIIF sweep."""
    return table[(table["dataset"] == dataset) & (table["scale"] == scale)]


def _psnr(table: pd.DataFrame, dataset: str, scale: int, widths: Sequence[int]) -> list[str]:
    return [f"{v:.2f}" for v in at_widths(_part(table, dataset, scale), "psnr", widths)]


def _case(dataset: str, scale: int) -> str:
    """A LIIF row's name: the held-out training images are the validation set."""
    return f"{'validation' if dataset == 'val' else dataset} ×{scale}"


def _liif(results: Path) -> tuple[pd.DataFrame, pd.Series]:
    """LIIF's committed sweep and its bicubic PSNR by (dataset, scale)."""
    bicubic = pd.read_csv(results / "liif" / "bicubic.csv").set_index(["dataset", "scale"])["psnr"]
    return read_table(results / "liif" / "sweep.csv"), bicubic


def _liif_table(results: Path, cases: Sequence[tuple[str, int]] | None) -> str:
    """Y-PSNR of bicubic and a few decoder widths per dataset and scale (``cases``; None: every
    one bicubic.csv holds), then the decoder's parameters."""
    widths = [16, 32, 48, 64, 128, 256]
    sweep, bicubic = _liif(results)
    cases = list(bicubic.index) if cases is None else cases
    rows = []
    for dataset, scale in cases:
        part = _part(sweep, dataset, scale).set_index("width")
        cells = [f"{part.loc[w, 'psnr']:.2f}" if w in part.index else "" for w in widths]
        rows.append([_case(dataset, scale), f"{bicubic[(dataset, scale)]:.2f}", *cells])
    params = sweep.drop_duplicates("width").set_index("width")["params"]
    rows.append(
        ["decoder parameters", "", *(count(params[w]) if w in params else "" for w in widths)]
    )
    return markdown(["Y-PSNR (dB)", "bicubic", *(f"width {w}" for w in widths)], rows)


def liif_psnr(results: Path) -> str:
    return _liif_table(results, [("val", 4), ("Set5", 2), ("Set5", 4), ("Set14", 4)])


def liif_psnr_all(results: Path) -> str:
    return _liif_table(results, None)


def _margins(sweep: pd.DataFrame, bicubic: pd.Series) -> pd.DataFrame:
    keys = zip(sweep["dataset"], sweep["scale"], strict=True)
    return sweep.assign(margin=sweep["psnr"] - [bicubic[key] for key in keys])


def liif_facts(results: Path, near_full_db: float = 0.1) -> str:
    """Two widths chosen on validation and what they give on the test sets (Set5, Set14 at
    x2-x4): the narrowest decoder above bicubic at every validation scale, and the narrowest
    within ``near_full_db`` of the full width at every validation scale; then the full width's
    margins over bicubic."""
    sweep, bicubic = _liif(results)
    sweep = _margins(sweep, bicubic)
    full_width = sweep["width"].max()
    full_psnr = sweep[sweep["width"] == full_width].set_index(["dataset", "scale"])["psnr"]
    keys = zip(sweep["dataset"], sweep["scale"], strict=True)
    sweep = sweep.assign(below_full=[full_psnr[key] for key in keys] - sweep["psnr"])
    val = sweep[sweep["dataset"] == "val"].groupby("width")
    above, near = val["margin"].min(), val["below_full"].max()
    core = sweep[sweep["dataset"].isin(["Set5", "Set14"]) & sweep["scale"].isin([2, 3, 4])]

    def worst(width: int, column: str, sign: int) -> str:
        at = core[core["width"] == width]
        row = at.loc[(sign * at[column]).idxmin()]
        return f"{_case(row['dataset'], row['scale'])}: {sign * row[column]:+.2f} dB"

    def size(width: int) -> str:
        params = count(core.loc[core["width"] == width, "params"].iloc[0])
        return f"{width} ({params} decoder parameters)"

    picks = {"above": int(above[above > 0].index.min()),
             "near": int(near[near <= near_full_db].index.min())}  # fmt: skip
    full = core[core["width"] == full_width].set_index(["dataset", "scale"])["margin"]
    rows = [
        ["narrowest width above bicubic at ×2, ×3 and ×4 (validation)", size(picks["above"])],
        ["its worst test margin over bicubic", worst(picks["above"], "margin", 1)],
        [f"narrowest width within {near_full_db} dB of full width at ×2–×4 (validation)",
         size(picks["near"])],
        ["its worst test difference to full width", worst(picks["near"], "below_full", -1)],
        ["full width over bicubic: Set5 ×2, ×4 (test)",
         f"{full[('Set5', 2)]:+.2f} dB, {full[('Set5', 4)]:+.2f} dB"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`liif/sweep.csv`, `liif/bicubic.csv`)"], rows)


def liif_trials(results: Path) -> str:
    """``make trials-liif``: each rescaling setting's validation PSNR (mean over the scales) at
    the trial widths, the chosen one (best mean over widths) marked. Validation only."""
    table = pd.read_csv(results / "liif" / "trials.csv")
    table = table[table["dataset"] == "val"]
    widths = sorted(table["width"].unique())
    scales = sorted(table["scale"].unique())
    by_width = table.groupby(["rescale", "width"])["psnr"].mean()
    mean = by_width.groupby(level="rescale").mean()
    rows = [
        [str(rescale), *(f"{by_width[(rescale, w)]:.2f}" for w in widths), f"{mean[rescale]:.3f}",
         "✓" if rescale == mean.idxmax() else ""]
        for rescale in mean.index
    ]  # fmt: skip
    scale_text = ", ".join(f"×{s}" for s in scales)
    header = ["`dropout.rescale`", *(f"width {w}" for w in widths), "mean", "chosen"]
    return f"Validation Y-PSNR (dB), mean of {scale_text}:\n\n" + markdown(header, rows)


def liif_recipes(results: Path) -> str:
    """``make trials-liif-recipes`` (issue #17): each recipe's validation Y-PSNR at full width
    (and its gap to plain training's trial) and at widths 32, 64, 128, per scale, and its
    training time with the teacher's counted beside. Validation only: the trials choose."""
    table = pd.read_csv(results / "liif" / "recipes.csv")
    table["setting"] = table["setting"].fillna("")
    plain = table[(table["recipe"] == "reference") & (table["setting"] == "experiment=liif_plain")]
    if plain.empty:
        raise ValueError("recipes.csv has no plain trial (recipe reference, experiment=liif_plain)")
    scales = sorted(table["scale"].unique())
    plain_full = {
        s: plain[plain["scale"] == s].sort_values("width")["psnr"].iloc[-1] for s in scales
    }
    rows = []
    for (recipe, setting), trial in table.groupby(["recipe", "setting"], sort=False):
        cells = []
        for scale in scales:
            at = trial[trial["scale"] == scale].set_index("width")["psnr"].sort_index()
            full = at.iloc[-1]
            narrow = " / ".join(f"{at[w]:.2f}" if w in at.index else "–" for w in (32, 64, 128))
            cells += [f"{full:.2f} ({full - plain_full[scale]:+.2f})", narrow]
        minutes = trial["train_seconds"].iloc[0] / 60
        teacher = trial["teacher_seconds"].iloc[0] / 60
        cost = f"{minutes:.1f}" + (f" + {teacher:.1f} teacher" if teacher else "")
        rows.append([recipe, f"`{setting}`" if setting else "", *cells, cost])
    header = ["recipe", "setting"]
    for scale in scales:
        header += [f"×{scale} full width (vs plain)", f"×{scale} widths 32 / 64 / 128"]
    return markdown([*header, "training (min)"], rows)


def liif_runs(results: Path) -> str:
    """The committed LIIF runs (of the three, those in ``results``): provenance, training and
    sweep time, seconds per step."""
    runs = {"sandwich rule (`make reproduce-liif`)": "liif",
            "paper rule (`paper_rule/`)": "liif/paper_rule",
            "plain (`none/`)": "liif/none"}  # fmt: skip
    rows = []
    for name, folder in runs.items():
        if not (results / folder / "run.json").is_file():
            continue
        run = json.loads((results / folder / "run.json").read_text())
        steps = run["config"]["task"]["steps_per_epoch"] * run["config"]["trainer"]["epochs"]
        rows.append(
            [name, _commit(run), _hardware(run), f"{run['train_seconds'] / 60:.1f} min",
             f"{run['train_seconds'] / steps:.2f} s", f"{run['sweep_seconds'] / 60:.1f} min"]
        )  # fmt: skip
    header = ["run (seed 0)", "commit", "hardware", "training", "per step (validations included)",
              "sweep"]  # fmt: skip
    return markdown(header, rows)


def liif_paper_rule(results: Path) -> str:
    """The sandwich rule (``make reproduce-liif``) against the paper's rule (``paper_rule/``):
    both runs' PSNR at a few widths on validation and test."""
    widths = [8, 16, 32, 64, 128, 256]
    runs = {"sandwich": results / "liif", "paper rule": results / "liif" / "paper_rule"}
    sweeps = {name: read_table(folder / "sweep.csv") for name, folder in runs.items()}
    rows = []
    for dataset, scale in [("val", 2), ("val", 4), ("Set5", 2), ("Set5", 4), ("Set14", 4)]:
        for name, sweep in sweeps.items():
            rows.append([f"{_case(dataset, scale)}, {name}", *_psnr(sweep, dataset, scale, widths)])
    return markdown(["Y-PSNR (dB)", *(f"width {w}" for w in widths)], rows)


def liif_plain(results: Path) -> str:
    """The plain model at full width and truncated, beside the nested model's full width, on
    the validation images and on Set5."""
    ours = read_table(results / "liif" / "sweep.csv")
    plain = read_table(results / "liif" / "none" / "sweep.csv")
    full = int(ours["width"].max())
    rows = []
    for dataset, scale in [("val", 2), ("val", 4), ("Set5", 2), ("Set5", 3), ("Set5", 4)]:
        mine = float(_psnr(ours, dataset, scale, [full])[0])
        theirs = float(_psnr(plain, dataset, scale, [full])[0])
        part = _part(plain, dataset, scale)
        truncated = part[part["width"] <= 128]["psnr"]
        rows.append(
            [
                _case(dataset, scale),
                f"{theirs:.2f}",
                f"{truncated.min():.2f} – {truncated.max():.2f}",
                f"{mine:.2f}",
                f"{mine - theirs:+.2f}",
            ]
        )
    header = [
        "Y-PSNR (dB)", "plain, full width", "plain, widths ≤ 128", "nested, full width",
        "difference",
    ]  # fmt: skip
    return markdown(header, rows)


def _comparison(results: Path) -> pd.DataFrame:
    table = pd.read_csv(results / "compare" / "mnist.csv", dtype={"setting": str})
    return table.fillna({"setting": ""})  # a method without knobs: an empty setting, not NaN


def _mean_std(values: pd.Series) -> str:
    return _percent_pm(values.mean(), values.std() if values.count() > 1 else None)


def _percent_pm(mean: float, std: float | None) -> str:
    """An accuracy in % with its spread (none for a single seed)."""
    text = f"{100 * mean:.2f}"
    return text if std is None or pd.isna(std) else f"{text} ± {100 * std:.2f}"


def compare_methods(results: Path) -> str:
    """Test accuracy per method at a few widths: mean ± std over seeds where there are several,
    and the training a method needs for all of them (per seed, against plain training). The
    baselines whose knob is the model size are in ``compare_sized`` instead."""
    table = _comparison(results)
    widths = [16, 32, 64, 256]
    plain = table.loc[table["method"] == "none", "train_seconds"].iloc[0]
    rows = []
    for method, group in table.groupby("method", sort=False):
        if method in SIZE_KNOBS:
            continue
        at = {w: group[group["width"] == w] for w in widths}
        cells = ["" if at[w].empty else _mean_std(at[w]["accuracy"]) for w in widths]
        runs, seconds = int(group["train_runs"].iloc[0]), group["train_seconds"].iloc[0]
        cost = f"{seconds:.0f} s ({seconds / plain:.1f}×)"
        rows.append([method, *cells, runs, cost, group["seed"].nunique()])
    header = [
        "method (test accuracy, %)",
        *(f"width {w}" for w in widths),
        "training runs",
        "training (× plain)",
        "seeds",
    ]
    return markdown(header, rows)


def compare_sized(results: Path) -> str:
    """The baselines whose setting is the model size: each model's parameters and accuracy."""
    table = _comparison(results)
    rows = []
    for (method, setting), group in table.groupby(["method", "setting"], sort=False):
        if method not in SIZE_KNOBS:
            continue
        rows.append(
            [method, setting, count(group["params"].mean()), _mean_std(group["accuracy"]),
             group["seed"].nunique()]
        )  # fmt: skip
    return markdown(["method", "setting", "parameters", "test accuracy, %", "seeds"], rows)


def compare_tuning(results: Path) -> str:
    """Every tuning trial, scored on validation (seed 0), each method's choice marked."""
    table = pd.read_csv(results / "compare" / "tuning.csv")
    rows = [
        [
            row.method,
            f"`{row.setting}`" if isinstance(row.setting, str) and row.setting else "",
            row.runs,
            percent(row.val_score, 2),
            percent(row.val_full, 2),
            f"{row.train_seconds:.0f} s",
            "✓" if row.chosen else "",
        ]
        for row in table.sort_values(["method", "val_score"], ascending=[True, False]).itertuples()
    ]
    header = ["method", "trial", "runs", "validation, widths ≥ 16", "validation, full",
              "training", "chosen"]  # fmt: skip
    return markdown(header, rows)


def _runs_cost(runs_file: Path, target: str) -> str:
    """What a make target cost: its runs, their training time, and its wall time (the time
    while at least one of its runs ran, from the starts and durations its ``*_runs.json``
    records)."""
    runs = json.loads(runs_file.read_text())
    starts = [datetime.fromisoformat(r["date"]) for r in runs]
    ends = [
        start + timedelta(seconds=r["train_seconds"] + (r.get("sweep_seconds") or 0))
        for start, r in zip(starts, runs, strict=True)
    ]
    threads = sorted({r["hardware"]["torch_threads"] for r in runs})
    # The time while any run ran: a target continued in a later session has a gap between.
    wall, busy_until = 0.0, None
    for start, end in sorted(zip(starts, ends, strict=True)):
        if busy_until is None or start > busy_until:
            wall, busy_until = wall + (end - start).total_seconds(), end
        elif end > busy_until:
            wall, busy_until = wall + (end - busy_until).total_seconds(), end
    commits: dict[str, int] = {}
    for r in runs:
        commits[_commit(r)] = commits.get(_commit(r), 0) + 1
    rows = [
        ["runs", len(runs)],
        ["runs per commit", ", ".join(f"{c}: {n}" for c, n in commits.items())],
        ["threads per run (two runs side by side)", ", ".join(map(str, threads))],
        ["training time, all runs", f"{sum(r['train_seconds'] for r in runs) / 60:.0f} min"],
        ["wall time while any run ran", f"{wall / 60:.0f} min"],
    ]
    return markdown([f"make {target}", f"value (`{runs_file.name}`)"], rows)


def mnist_seeds_cost(results: Path) -> str:
    return _runs_cost(results / "mnist" / "seeds_runs.json", "sweep-mnist")


def compare_tuning_cost(results: Path) -> str:
    return _runs_cost(results / "compare" / "tuning_runs.json", "tune-mnist")


def compare_cost(results: Path) -> str:
    return _runs_cost(results / "compare" / "mnist_runs.json", "compare-mnist")


def _points(mean: float, se: float | None = None) -> str:
    """An accuracy difference in percentage points, signed, with its standard error."""
    text = f"{100 * mean:+.2f}"
    return text if se is None or pd.isna(se) else f"{text} ± {100 * se:.2f}"


def _gaps(results: Path) -> pd.DataFrame:
    gaps = pd.read_csv(results / "compare" / "mnist_gaps.csv")
    gaps["goal"] = gaps["reference"].map(GAP_GOALS)
    gaps["met"] = 100 * gaps["mean"] >= -gaps["goal"]
    return gaps


def _verdict(results: Path, gaps: pd.DataFrame) -> str:
    """One line: how many widths meet the goal, the full-width gap, the cost of the one run
    against a plain one, and whether the goal is met."""
    seconds = _comparison(results).groupby("method")["train_seconds"].first()
    method = str(gaps["method"].iloc[0])
    ratio = seconds[method] / seconds["none"]
    wide = gaps[gaps["reference"] == "independent"]
    plain = gaps[gaps["reference"] == "none"].iloc[0]
    met = bool(gaps["met"].all()) and ratio <= 2
    return (
        f"`{method}` (the best one-run method on validation) is within "
        f"{GAP_GOALS['independent']} points of separately trained models at "
        f"{int(wide['met'].sum())} of {len(wide)} widths ≥ 16 and "
        f"{_points(plain['mean'], plain['se'])} points from plain training at full width "
        f"(goal: within {GAP_GOALS['none']}); its one run costs {ratio:.1f}× a plain run "
        f"({seconds[method]:.0f} s vs {seconds['none']:.0f} s of training, mean over seeds; "
        f"goal ≤ 2×). " + ("**The goal is met.**" if met else "**The goal is missed.**") + "\n"
    )


def compare_gaps(results: Path) -> str:
    """The headline (``mnist_gaps.csv``): the best one-run method against separately trained
    models at each width >= 16 and against plain training at full width, mean gap ± standard
    error paired by seed, each against its goal; then the verdict (``_verdict``)."""
    gaps = _gaps(results)
    rows = [
        [f"`{row.reference}`", row.width, row.seeds, _points(row.mean, row.se),
         "yes" if row.significant else "no", f"≥ −{row.goal:.1f}",
         "met" if row.met else "**missed**"]
        for row in gaps.itertuples()
    ]  # fmt: skip
    header = ["against", "width", "seeds", "gap, points (mean ± SE)", "beyond 2 SE", "goal",
              "result"]  # fmt: skip
    return markdown(header, rows) + "\n" + _verdict(results, gaps)


def compare_headline(results: Path) -> str:
    """The headline in one row for the README: the gap to separately trained models at each
    width >= 16 (mean ± SE, points; bold where it misses the goal), then the verdict."""
    gaps = _gaps(results)
    wide = gaps[gaps["reference"] == "independent"]
    method = str(gaps["method"].iloc[0])
    cells = [
        (_points(r.mean, r.se) if r.met else f"**{_points(r.mean, r.se)}**")
        for r in wide.itertuples()
    ]
    header = ["test accuracy gap, points", *(f"w {w}" for w in wide["width"])]
    rows = [[f"`{method}` − separately trained", *cells]]
    return markdown(header, rows) + "\n" + _verdict(results, gaps)


def compare_pairs(results: Path) -> str:
    """Every one-run method against separately trained models at a few widths: the test accuracy
    gap in points, paired by seed (mean ± SE), marked ``*`` where it is beyond twice its standard
    error (the bar for claiming a difference)."""
    table = _comparison(results)
    widths = [16, 32, 64, 128, 256]
    rows = []
    for method, group in table.groupby("method", sort=False):
        if group["train_runs"].iloc[0] != 1 or method in SIZE_KNOBS:
            continue
        gaps = paired_gaps(table, method, "independent").set_index("width")
        cells = []
        for w in widths:
            gap = gaps.loc[w] if w in gaps.index else None
            mark = "*" if gap is not None and gap["significant"] else ""
            cells.append("" if gap is None else _points(gap["mean"], gap["se"]) + mark)
        rows.append([method, *cells])
    header = ["method − separately trained (points)", *(f"width {w}" for w in widths)]
    return markdown(header, rows)


def compare_budget(results: Path) -> str:
    """Per method, the model within 10 / 25 / 50% of the full model's parameters with the best
    mean validation accuracy, its test accuracy (mean ± std over seeds), width and parameters."""
    budget = budget_table(_comparison(results))
    names = ["10%", "25%", "50%"]
    rows = []
    for row in budget.to_dict("records"):
        cells = [
            "–" if pd.isna(row[f"{n} width"]) else
            f"{_percent_pm(row[f'{n} accuracy'], row[f'{n} std'])} "
            f"(width {row[f'{n} width']:.0f}, {count(row[f'{n} params'])})"
            for n in names
        ]  # fmt: skip
        full = _percent_pm(row["full width"], row["full std"])
        rows.append([row["method"], *cells, full, row["train_runs"], row["seeds"]])
    header = ["method (test accuracy, %)", *(f"≤ {n} params" for n in names), "full width",
              "training runs", "seeds"]  # fmt: skip
    return markdown(header, rows)


def compare_ordering(results: Path) -> str:
    """Per one-run method and hidden layer, the rank correlation between unit index and the
    validation accuracy lost when that unit alone is removed: mean ± std over its runs."""
    order = pd.read_csv(results / "compare" / "mnist_ordering.csv")
    stats = order.groupby(["method", "layer"], sort=False)["spearman"].agg(["mean", "std", "count"])
    rows = [
        [method, layer, f"{s['mean']:+.2f}" + ("" if s["count"] < 2 else f" ± {s['std']:.2f}"),
         int(s["count"])]
        for (method, layer), s in stats.iterrows()
    ]  # fmt: skip
    return markdown(["method", "layer", "Spearman ρ (index vs loss)", "runs"], rows)


def _duration(seconds: float) -> str:
    return f"{seconds:.4g} s" if seconds >= 1 else f"{1e3 * seconds:.4g} ms"


# The speed claims' targets (ratio candidate / baseline at most this), by benchmark and, where
# only some cases carry a claim, the start of the case's name.
BENCH_TARGETS = {
    ("export_vs_native", ""): 1.05,
    ("sd_train_step_vs_plain", ""): 0.8,
    ("sweep_cached_vs_naive", ""): 1 / 50,
    ("mnist_pipeline_vs_dataloader", ""): 1 / 5,
    ("method_step_vs_plain", "mnist nested_distill"): 2.0,
    ("lenet5_small_vs_full", "exported w=127 batch=256"): 0.35,
}


def _bench_target(benchmark: str, case: str) -> float | None:
    for (name, prefix), target in BENCH_TARGETS.items():
        if name == benchmark and case.startswith(prefix):
            return target
    return None


def _target_cells(benchmark: str, case: str, ratios: pd.Series) -> list[str]:
    """The target of ``case`` (the first of a group) and whether ``ratios`` meet it: every one,
    or for a group of like cases their geometric mean (``POOLED``)."""
    target = _bench_target(benchmark, case)
    if target is None:
        return ["", ""]
    if benchmark in POOLED:
        met = geometric_mean(ratios.tolist()) <= target
        return [f"geometric mean ≤ {target:.3g}", "met" if met else "**missed**"]
    met = (ratios <= target).all()
    return [f"≤ {target:.3g}", "met" if met else "**missed**"]


# Benchmarks whose like cases are one row: the export check and its control (identical models),
# judged by the geometric mean, since one case alone moves by its placement (the control's range).
POOLED = ("export_vs_native", "identical_dense_models")


def bench(results: Path) -> str:
    """Every benchmark's ratio against its target; the export check's like cases (and its
    control's) as one row: their range and geometric mean."""
    table = pd.read_csv(results / "bench" / "bench.csv")
    rows = []
    for name, group in table.groupby("benchmark", sort=False):
        if name in POOLED:
            ratio = (f"{group['ratio'].min():.3f} – {group['ratio'].max():.3f} "
                     f"(geometric mean {geometric_mean(group['ratio'].tolist()):.3f})")  # fmt: skip
            rows.append([f"`{name}`", f"{len(group)} cases", ratio, "", "",
                         *_target_cells(name, group["case"].iloc[0], group["ratio"])])  # fmt: skip
            continue
        for row in group.itertuples():
            rows.append(
                [f"`{name}`", row.case, f"{row.ratio:.3g}", _duration(row.baseline_s),
                 _duration(row.candidate_s), *_target_cells(name, row.case, pd.Series([row.ratio]))]
            )  # fmt: skip
    header = ["benchmark", "case", "ratio candidate / baseline", "baseline", "candidate",
              "target", "result"]  # fmt: skip
    return markdown(header, rows)


def bench_run(results: Path) -> str:
    """Where and when the committed benchmarks ran (``run.json``)."""
    run = json.loads((results / "bench" / "run.json").read_text())
    rows = [
        ["commit", _commit(run) if run["dirty"] else f"{_commit(run)} (clean)"],
        ["date", run["date"][:10]],
        ["hardware", f"{_hardware(run).replace('threads', 'torch threads')}, "
                     f"{run['hardware']['device']}"],
        ["torch", run["torch"]],
        ["wall time", f"{run['seconds']:.0f} s"],
    ]  # fmt: skip
    return markdown(["`make bench`", "value (`run.json`)"], rows)


def bench_widths(results: Path) -> str:
    """``widths.csv``: per model and exported width, its size, work and latency at each batch."""
    table = pd.read_csv(results / "bench" / "widths.csv")
    rows = []
    for model, group in table.groupby("model", sort=False):
        full_macs = group["macs_per_sample"].max()
        batches = sorted(group["batch"].unique())
        for width, at in group.groupby("width"):
            latency = at.set_index("batch")["latency_ms"]
            first = at.iloc[0]
            share = percent(first["macs_per_sample"] / full_macs)
            rows.append(
                [model, str(width), count(first["params"]),
                 f"{count(first['macs_per_sample'])} ({share})",
                 ", ".join(f"{latency[b]:.3g} ms (batch {b})" for b in batches)]
            )  # fmt: skip
    header = ["model", "width", "parameters", "multiply-adds per sample (of full)", "latency"]
    return markdown(header, rows)


TABLES: dict[str, Callable[[Path], str]] = {
    fn.__name__: fn
    for fn in (
        mnist_widths,
        mnist_facts,
        mnist_seeds,
        mnist_seeds_cost,
        lenet5_widths,
        lenet5_facts,
        pointnet_widths,
        pointnet_facts,
        pointnet_trials,
        pointnet_shared_bn,
        liif_psnr,
        liif_psnr_all,
        liif_facts,
        liif_trials,
        liif_runs,
        liif_paper_rule,
        liif_plain,
        compare_methods,
        compare_sized,
        compare_tuning,
        compare_tuning_cost,
        compare_cost,
        compare_gaps,
        compare_headline,
        compare_pairs,
        compare_budget,
        compare_ordering,
        bench,
        bench_run,
        bench_widths,
    )
}


def render_text(text: str, results: Path) -> str:
    """``text`` with every marked table regenerated; an unknown table name is an error."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise KeyError(f"unknown generated table {name!r}; known: {sorted(TABLES)}")
        return match.group(1) + TABLES[name](results) + match.group(4)

    return BLOCK.sub(fill, text)


def render_files(paths: Sequence[Path], results: Path, write: bool = True) -> list[Path]:
    """Regenerate the tables of ``paths``; returns the files whose text changed (written back
    unless ``write`` is false: the check mode)."""
    changed = []
    for path in paths:
        text = path.read_text()
        new = render_text(text, results)
        if new != text:
            changed.append(path)
            if write:
                path.write_text(new)
    return changed
