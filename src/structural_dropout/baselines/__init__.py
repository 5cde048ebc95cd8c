"""The methods structural dropout is compared against, built on the core: Dropout Compaction
(``compaction``), Drop Pruning (``pruning``) and sorting a plain model's units (``unit_sorting``).
Each is a set of training hooks (``structural_dropout.lab.hooks.MethodHooks``) or a function."""
