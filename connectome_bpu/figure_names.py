"""Which figures each experiment draws, by name: what the workflow plans, kept apart from the drawing code so
that planning a run (every ``snakemake`` start, dry runs included) does not load matplotlib."""

from __future__ import annotations

PATH_FIGURES = ("error_vs_sequence_length", "loss_curve", "error_vs_noise", "sample_efficiency")
ASSOCIATIVE_FIGURES = ("loss_curve", "accuracy_by_phase", "sample_efficiency")
OPTIC_FLOW_FIGURES = ("loss_curve", "velocity_traces", "error_by_preset", "sample_efficiency")
FIGURES = PATH_FIGURES + ("accuracy_by_phase", "velocity_traces", "error_by_preset")   # every name (the wildcard)
EXAMPLE_FIGURES = ("velocity_traces",)   # figures that read the jobs' example episodes
_FAMILY_FIGURES = {"mb_associative": ASSOCIATIVE_FIGURES, "optic_flow": OPTIC_FLOW_FIGURES}


def figures_for(task: str) -> tuple[str, ...]:
    """The figures an experiment on ``task`` draws."""
    return _FAMILY_FIGURES.get(task, PATH_FIGURES)
