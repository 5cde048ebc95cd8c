"""make figures: every committed figure that has a CSV is redrawn by the current plotting code."""

import runpy
import shutil

from PIL import Image

from conftest import REPO

# Drawn from the trained model by its LIIF run (a super-resolved crop), not from a CSV.
NEEDS_A_MODEL = "Set14_zebra_x4.png"


def test_make_figures_redraws_every_committed_figure(tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(REPO / "results", results)
    committed = {
        str(p.relative_to(REPO / "results")): Image.open(p).size
        for p in (REPO / "results").rglob("*.png")
    }
    for png in results.rglob("*.png"):
        png.unlink()
    # scripts/figures.py's main, in this process (the same code `make figures` runs)
    runpy.run_path(str(REPO / "scripts" / "figures.py"))["main"](results)
    printed = capsys.readouterr().out.split()
    redrawn = {str((tmp_path / p).relative_to(results)) for p in printed if p.endswith(".png")}
    pictures = {name for name in committed if name.endswith("/" + NEEDS_A_MODEL)}
    assert len(pictures) >= 2 and all(name.startswith("liif/") for name in pictures)
    assert redrawn == set(committed) - pictures
    for name in redrawn:  # the committed file is what the current code draws (same size)
        assert Image.open(results / name).size == committed[name], name
