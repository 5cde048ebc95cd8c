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

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from .bench import bench, bench_run, bench_widths
from .comparison import (
    compare_budget,
    compare_cost,
    compare_gaps,
    compare_headline,
    compare_methods,
    compare_ordering,
    compare_pairs,
    compare_sized,
    compare_tuning,
    compare_tuning_cost,
)
from .lenet5 import (
    lenet5_compaction_thresholds,
    lenet5_facts,
    lenet5_tuning,
    lenet5_tuning_cost,
    lenet5_widths,
)
from .lenet5_compare import (
    lenet5_compare_budget,
    lenet5_compare_cost,
    lenet5_compare_methods,
    lenet5_compare_pairs,
    lenet5_compare_sized,
    lenet5_compare_training,
    lenet5_targets,
)
from .liif import (
    liif_facts,
    liif_from_plain_psnr,
    liif_paper_rule,
    liif_plain,
    liif_psnr,
    liif_psnr_all,
    liif_recipes,
    liif_runs,
    liif_target,
    liif_target_seeds,
    liif_trials,
)
from .mnist import (
    mnist_ddp_cuts,
    mnist_ddp_cuts_cost,
    mnist_facts,
    mnist_seeds,
    mnist_seeds_cost,
    mnist_widths,
)
from .pointnet import pointnet_facts, pointnet_shared_bn, pointnet_trials, pointnet_widths
from .shakespeare import (
    shakespeare_export,
    shakespeare_facts,
    shakespeare_heads,
    shakespeare_latency,
    shakespeare_summary,
    shakespeare_widths,
)
from .shakespeare_compare import (
    shakespeare_compare_compute,
    shakespeare_compare_cost,
    shakespeare_compare_headline,
    shakespeare_compare_methods,
    shakespeare_targets,
    shakespeare_tuning_cost,
    shakespeare_tuning_trials,
)

BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


TABLES: dict[str, Callable[[Path], str]] = {
    fn.__name__: fn
    for fn in (
        mnist_widths,
        mnist_facts,
        mnist_seeds,
        mnist_seeds_cost,
        mnist_ddp_cuts,
        mnist_ddp_cuts_cost,
        lenet5_widths,
        lenet5_facts,
        lenet5_tuning,
        lenet5_tuning_cost,
        lenet5_compaction_thresholds,
        lenet5_compare_cost,
        lenet5_compare_training,
        lenet5_targets,
        lenet5_compare_methods,
        lenet5_compare_pairs,
        lenet5_compare_sized,
        lenet5_compare_budget,
        shakespeare_facts,
        shakespeare_widths,
        shakespeare_summary,
        shakespeare_heads,
        shakespeare_latency,
        shakespeare_export,
        shakespeare_tuning_trials,
        shakespeare_tuning_cost,
        shakespeare_compare_cost,
        shakespeare_targets,
        shakespeare_compare_headline,
        shakespeare_compare_methods,
        shakespeare_compare_compute,
        pointnet_widths,
        pointnet_facts,
        pointnet_trials,
        pointnet_shared_bn,
        liif_psnr,
        liif_psnr_all,
        liif_facts,
        liif_trials,
        liif_recipes,
        liif_runs,
        liif_paper_rule,
        liif_plain,
        liif_target,
        liif_target_seeds,
        liif_from_plain_psnr,
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
