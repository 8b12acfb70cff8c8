"""Rule of ``rules/controls.smk``: one control substrate per (substrate, control, seed)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..controls import build_control, save_control, write_no_recurrence_marker
from ..graph import load_primary
from ..model_names import NO_RECURRENCE, control_base

LOG = logging.getLogger(__name__)


def control(smk: Any) -> None:
    """Draw the control from its own seed, rescale it to the target radius and store it with its invariants."""
    primary = load_primary(Path(smk.input.info).parent)
    name, seed = smk.wildcards.control, int(smk.wildcards.seed)
    sha = primary.info["primary_sha256"]
    if name == NO_RECURRENCE:
        write_no_recurrence_marker(smk.output[0], primary.matrix, seed=seed, primary_sha256=sha,
                                   rho_target=smk.params.rho_target, neuron_signs=primary.signs_for_controls)
        return
    drawn = build_control(primary.matrix, name, seed, rho_target=smk.params.rho_target,
                          neuron_signs=primary.signs_for_controls, spectral_kwargs=dict(smk.params.spectral))
    LOG.info("%s seed %d: rng seed %d, radius before rescale %.6g (%s), scale %.6g", name, seed, drawn.rng_seed,
             drawn.spectral_before.radius, drawn.spectral_before.method, drawn.scale)
    save_control(smk.output[0], drawn, primary_sha256=sha,
                 extra_meta={"substrate": smk.wildcards.substrate, "control_family": control_base(name)})
