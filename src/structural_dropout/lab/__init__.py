"""The lab harness: the only part of the library that imports Hydra (and pandas, matplotlib).

``build`` builds a run from a composed config (and rebuilds one from a checkpoint), ``training``
holds the loop, ``sweep`` the width sweep and the one writer and reader of ``sweep.csv``,
``run`` the entry points' work (train and sweep, re-sweep, export), ``checkpoint`` and
``provenance`` what makes a result rerunnable, and ``reports`` the figures, multirun aggregation,
method comparison and the unit-ablation ordering diagnostic.
"""
