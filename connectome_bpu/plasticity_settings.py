"""What a ``training.plasticity`` block asks for, without torch (docs/plasticity.md).

Why a module of its own: the config and experiment code that names result directories and refuses bad
combinations runs at workflow start-up, where importing torch would slow every snakemake call; the rule
itself (connectome_bpu.plasticity) needs torch.
"""

from __future__ import annotations

from typing import Any, Mapping

from .errors import BPUInputError

PLASTICITY_RULES = ("none", "modulated_depression")


def plasticity_rule(settings: Mapping[str, Any] | None) -> str:
    """The rule a ``training.plasticity`` block names (an absent block: ``none``), validated."""
    rule = "none" if not settings else settings.get("rule", "none")
    if rule not in PLASTICITY_RULES:
        raise BPUInputError(f"training.plasticity.rule is {rule!r}; expected one of {', '.join(PLASTICITY_RULES)}")
    return rule


def is_plastic(settings: Mapping[str, Any] | None) -> bool:
    """Whether a ``training.plasticity`` block turns within-episode plasticity on."""
    return plasticity_rule(settings) != "none"


def plastic_parameter_count(n_output: int, d_in: int) -> int:
    """Trainable scalars the rule adds: the teaching-signal map ``W_mod`` (n_o x d_in) and its bias ``b_mod``."""
    return n_output * d_in + n_output
