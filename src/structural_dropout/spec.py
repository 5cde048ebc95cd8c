"""The knobs of structural dropout, defined once.

``CutSettings`` holds what one ``StructuralDropout`` layer needs besides its width: the layer, its
``extra_repr`` and the shared-cut check all read these fields, so a new knob is added here only.
``DropoutSpec`` adds what a whole model needs (one cut per step for every layer or one each,
ordinary dropout beside it, a width cap) and builds the layers of a truncatable model.

Imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

CUT_DISTRIBUTIONS = ("uniform", "log_uniform", "geometric")


def check_probability(value: float, name: str = "p") -> float:
    """``value`` as a float if it is a probability, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(value: int, name: str, meaning: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{meaning}, got {value!r}")
    return value


@dataclass(frozen=True)
class CutSettings:
    """How a structural dropout layer draws its cut in training.

    p: probability that a training step truncates at all.
    lower_bound, step: a truncating step draws the cut ``c`` from the grid
        ``lower_bound, lower_bound + step, ..., width`` (``width`` always included).
    distribution: how ``c`` is drawn from the grid: ``"uniform"`` (the paper), ``"log_uniform"``
        (probability proportional to ``1 / c``: each doubling of the width equally likely, so
        small widths train more often) or ``"geometric"`` (the i-th cut of the grid with
        probability proportional to ``(1 - geometric_p) ** i``, as Nested Dropout draws it).
    geometric_p: the geometric distribution's parameter (mean cut about ``step / geometric_p``).
    smallest_p: a truncating step draws the smallest cut (``lower_bound``) with this probability,
        and otherwise from ``distribution`` (extra training for the narrowest width).
    per_sample: each sample draws its own cut in training and is masked, instead of one cut per
        step (Nested Dropout); every unit is then computed, so training is not cheaper.
    rescale: multiply the kept features by ``width / c`` (the paper's setting), in training and
        at a fixed evaluation width alike, so a width means the same function in both.
    """

    p: float = 1.0
    lower_bound: int = 1
    step: int = 1
    distribution: str = "uniform"
    geometric_p: float = 0.05
    smallest_p: float = 0.0
    per_sample: bool = False
    rescale: bool = True

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability(self.p))
        object.__setattr__(self, "smallest_p", check_probability(self.smallest_p, "smallest_p"))
        check_positive_int(self.lower_bound, "lower_bound", " (the smallest cut)")
        check_positive_int(self.step, "step", " (the spacing of the cut grid)")
        if self.distribution not in CUT_DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {CUT_DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if isinstance(self.geometric_p, bool) or not 0.0 < self.geometric_p <= 1.0:
            raise ValueError(f"geometric_p must be in (0, 1], got {self.geometric_p!r}")
        for name in ("per_sample", "rescale"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def cut_settings(self) -> CutSettings:
        """Only the fields of ``CutSettings`` (a ``DropoutSpec`` drops its model-level ones)."""
        return CutSettings(**{name: getattr(self, name) for name in CUT_KNOBS})

    def draws_like(self, other: CutSettings) -> bool:
        """True when both draw cuts from the same distribution (``rescale`` aside)."""
        return all(getattr(self, k) == getattr(other, k) for k in CUT_KNOBS if k != "rescale")


CUT_KNOBS = tuple(f.name for f in fields(CutSettings))


@dataclass(frozen=True)
class DropoutSpec(CutSettings):
    """How a model's hidden layers are dropped; ``p=0, rescale=False`` is a plain model.

    Besides the cut settings (``CutSettings``):
    shared_cut: one cut per step for all layers (True) or one per layer (False).
    standard_p: rate of ordinary element-wise dropout added after each hidden layer.
    width_cap: build every hidden layer at most this wide (a dense model of that width, as
        ``export`` would give, but trained from scratch: the `independent` baseline).

    How many widths a training step trains (one random cut, or the sandwich rule) is the
    trainer's setting, not the layers': see ``structural_dropout.rules``.
    """

    shared_cut: bool = True
    standard_p: float = 0.0
    width_cap: int | None = None

    def __post_init__(self):
        super().__post_init__()
        check_probability(self.standard_p, "standard_p")
        if self.width_cap is not None:
            check_positive_int(self.width_cap, "width_cap", " or null")


PLAIN = DropoutSpec(p=0.0, rescale=False)
