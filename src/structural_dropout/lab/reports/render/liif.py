"""LIIF's tables (results/liif/)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ...sweep import read_table
from .format import at_widths, commit, count, hardware, markdown


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
    return read_table(results / "liif" / "sweep.csv"), _bicubic(results)


def _bicubic(results: Path) -> pd.Series:
    """LIIF's bicubic PSNR by (dataset, scale)."""
    return pd.read_csv(results / "liif" / "bicubic.csv").set_index(["dataset", "scale"])["psnr"]


def _liif_table(results: Path, cases: Sequence[tuple[str, int]] | None, run: str = "liif") -> str:
    """Y-PSNR of bicubic and a few decoder widths per dataset and scale (``cases``; None: every
    one bicubic.csv holds), then the decoder's parameters; of the run in ``results/<run>``."""
    widths = [16, 32, 48, 64, 128, 256]
    sweep, bicubic = read_table(results / run / "sweep.csv"), _bicubic(results)
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


def liif_from_plain_psnr(results: Path) -> str:
    """``make reproduce-liif-from-plain``'s Y-PSNR on validation and the test sets at x2, x4."""
    cases = [(d, s) for d in ("val", "Set5", "Set14") for s in (2, 4)]
    return _liif_table(results, cases, "liif/from_plain")


def _full_rows(sweep: pd.DataFrame) -> pd.DataFrame:
    """A LIIF sweep's full-width rows, by (dataset, scale)."""
    return sweep[sweep["width"] == sweep["width"].max()].set_index(["dataset", "scale"])


def _worst_margin(sweep: pd.DataFrame, min_width: int) -> pd.Series:
    """The row of widths from ``min_width`` at x2-x4 furthest under (or least over) bicubic, of a
    sweep with ``_margins``."""
    narrow = sweep[(sweep["width"] >= min_width) & sweep["scale"].isin([2, 3, 4])]
    return narrow.loc[narrow["margin"].idxmin()]


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
    (and its gap to plain training's trial) and at widths 32, 64, 128, per scale, the mean over
    its seeds (at full width ± their standard deviation where there are several), and its
    training time with the teacher's counted beside; last, the teacher itself (``none/``, the
    plain model's whole cpu schedule), against which a trial started from it compares.
    Validation only: the trials choose. The trials and the teacher must share one machine (from
    ``recipes_runs.json`` and the teacher's ``run.json``): times from two machines do not
    compare."""
    table = pd.read_csv(results / "liif" / "recipes.csv")
    table["setting"] = table["setting"].fillna("")
    plain = table[(table["recipe"] == "reference") & (table["setting"] == "experiment=liif_plain")]
    if plain.empty:
        raise ValueError("recipes.csv has no plain trial (recipe reference, experiment=liif_plain)")
    scales = sorted(table["scale"].unique())
    full_width = table["width"].max()
    plain_full = plain[plain["width"] == full_width].groupby("scale")["psnr"].mean()
    trials = list(table.groupby(["recipe", "setting"], sort=False))
    runs = json.loads((results / "liif" / "recipes_runs.json").read_text())
    teacher = results / "liif" / "none"
    if (teacher / "sweep.csv").is_file():  # the teacher: plain training's whole cpu schedule
        run = json.loads((teacher / "run.json").read_text())
        runs.append(run)
        sweep = read_table(teacher / "sweep.csv")
        sweep = sweep[sweep["dataset"] == "val"].assign(teacher_seconds=0.0, seed=run["seed"])
        sweep["train_seconds"] = run["train_seconds"]
        name = ("plain, whole cpu schedule (`none/`: the teacher)", "")
        trials.append((name, sweep[sweep["scale"].isin(scales)]))
    rows = []
    for (recipe, setting), trial in trials:
        seeds = trial["seed"].nunique()
        cells = []
        for scale in scales:
            at = trial[trial["scale"] == scale].groupby("width")["psnr"]
            mean = at.mean()
            spread = f" ± {at.std()[full_width]:.2f}" if seeds > 1 else ""
            full = f"{mean[full_width]:.2f}{spread}"
            narrow = " / ".join(f"{mean[w]:.2f}" if w in mean else "–" for w in (32, 64, 128))
            cells += [f"{full} ({mean[full_width] - plain_full[scale]:+.2f})", narrow]
        minutes = trial["train_seconds"].mean() / 60
        teacher = trial["teacher_seconds"].iloc[0] / 60
        cost = f"{minutes:.1f}" + (f" + {teacher:.1f} teacher" if teacher else "")
        rows.append([recipe, f"`{setting}`" if setting else "", str(seeds), *cells, cost])
    header = ["recipe", "setting", "seeds"]
    for scale in scales:
        header += [f"×{scale} full width (vs plain)", f"×{scale} widths 32 / 64 / 128"]
    machines = sorted({hardware(run) for run in runs})
    if len(machines) != 1:
        listed = "; ".join(machines)
        raise ValueError(f"the recipe trials ran on {len(machines)} machines ({listed}): their "
                         "training times do not compare")  # fmt: skip
    return f"On {machines[0]}:\n\n" + markdown([*header, "training (min)"], rows)


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
            [name, commit(run), hardware(run), f"{run['train_seconds'] / 60:.1f} min",
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


FROM_PLAIN = {
    "sandwich rule (`make reproduce-liif`)": "liif",
    "from plain (`from_plain/`)": "liif/from_plain",
    "from plain, smallest cut 32 every step (`from_plain_smallest/`)": "liif/from_plain_smallest",
}


def liif_target(results: Path, min_width: int = 32, full_db: float = 0.2) -> str:
    """Issue #17's target for each full ``cpu`` run (those of ``FROM_PLAIN`` in ``results``),
    on validation, where it is judged, and on the test sets, reported: the full width against
    plain training (``none/``) at x4, the worst margin over bicubic of the widths from
    ``min_width`` at x2-x4, and the training time with a teacher's counted (from the
    ``teacher_run.json`` committed beside a run taught by one) as a multiple of the plain run's
    of the same session (the teacher's, else ``none/``'s where it ran on the same machine).
    """
    bicubic = _bicubic(results)
    plain_run = json.loads((results / "liif" / "none" / "run.json").read_text())
    plain_full = _full_rows(read_table(results / "liif" / "none" / "sweep.csv"))
    rows = []
    for name, folder in FROM_PLAIN.items():
        if not (results / folder / "sweep.csv").is_file():
            continue
        sweep = _margins(read_table(results / folder / "sweep.csv"), bicubic)
        run = json.loads((results / folder / "run.json").read_text())
        teacher = results / folder / "teacher_run.json"
        taught = json.loads(teacher.read_text()) if teacher.is_file() else None
        if run["config"]["trainer"]["teacher"]["checkpoint"] and taught is None:
            raise FileNotFoundError(f"{teacher} is missing: the teacher's cost cannot be counted")
        seconds = run["train_seconds"] + (taught["train_seconds"] if taught else 0.0)
        full = _full_rows(sweep)
        cells, met = [], []
        for datasets, full_case in ((["val"], ("val", 4)), (["Set5", "Set14"], ("Set5", 4))):
            gap = full.loc[full_case, "psnr"] - plain_full.loc[full_case, "psnr"]
            worst = _worst_margin(sweep[sweep["dataset"].isin(datasets)], min_width)
            case = f"{_case(worst['dataset'], worst['scale'])}, width {worst['width']}"
            cells += [f"{gap:+.2f}", f"{worst['margin']:+.2f} ({case})"]
            met.append((gap >= -full_db, worst["margin"] > 0))
        # the plain run of the same session: the teacher itself, or none/ on the same machine
        reference = taught or (plain_run if hardware(run) == hardware(plain_run) else None)
        ratio = seconds / reference["train_seconds"] if reference else None
        times = f"{ratio:.1f}×" if ratio else hardware(run)
        missed = [part for part, ok in zip(("full width", f"width ≥ {min_width}"), met[0],
                                            strict=True) if not ok]  # fmt: skip
        if ratio is None or ratio > 2:
            missed.append("cost" if ratio else "cost unknown (plain ran on another machine)")
        rows.append([name, *cells, f"{seconds / 60:.1f} min ({times})",
                     f"no: {', '.join(missed)}" if missed else "yes"])  # fmt: skip
    header = [
        "full run (seed 0)", "validation ×4: full width vs plain",
        f"validation ×2–×4: worst width ≥ {min_width} over bicubic", "Set5 ×4: full width vs plain",
        f"Set5, Set14 ×2–×4: worst width ≥ {min_width} over bicubic",
        "training, a teacher's included (× plain's)", "target met on validation",
    ]  # fmt: skip
    return markdown(header, rows)


def liif_target_seeds(results: Path, min_width: int = 32) -> str:
    """``from_plain_smallest/`` and its further seeds (``from_plain_smallest/seed<N>/``, swept
    on validation only): per seed, the full width against plain training at x2-x4 and the worst
    margin over bicubic of the widths from ``min_width``, on validation; then their mean."""
    run = results / "liif" / "from_plain_smallest"
    folders = [run, *sorted(run.glob("seed*"))]
    plain = _full_rows(read_table(results / "liif" / "none" / "sweep.csv")).loc["val", "psnr"]
    bicubic = _bicubic(results)
    rows, values = [], []
    for folder in folders:
        sweep = read_table(folder / "sweep.csv")
        sweep = _margins(sweep[sweep["dataset"] == "val"], bicubic)
        seed = json.loads((folder / "run.json").read_text())["seed"]
        full = _full_rows(sweep).loc["val", "psnr"]
        gaps = [full[s] - plain[s] for s in (2, 3, 4)]
        worst = _worst_margin(sweep, min_width)
        values.append([*gaps, worst["margin"]])
        where = f"×{worst['scale']}, width {worst['width']}"
        rows.append([str(seed), *(f"{g:+.2f}" for g in gaps), f"{worst['margin']:+.2f} ({where})"])
    if len(rows) > 1:
        frame = pd.DataFrame(values)
        rows.append(["mean ± std", *(f"{m:+.2f} ± {d:.2f}" for m, d in
                                     zip(frame.mean(), frame.std(), strict=True))])  # fmt: skip
    header = ["seed", "×2: full width vs plain", "×3", "×4",
              f"worst width ≥ {min_width} over bicubic (×2–×4)"]  # fmt: skip
    return markdown(header, rows)
