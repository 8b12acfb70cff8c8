"""What each connectome choice means: where its exports come from, its primary ROIs, its pool rule.

This table is the seam between acquisition and everything downstream: a new source only has to
produce the export schema (neurons.csv, roi_counts.csv, connections.csv) and register here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SubstrateKind:
    connectome: str
    source: str                      # synthetic | local | neuprint | zenodo
    primary_rois: tuple[str, ...]    # empty for local: taken from config
    pool_rule: str                   # region | whole_brain
    description: str


CX_ROIS = ("EB", "PB", "FB", "NO")
SYNTHETIC_MB_ROIS = ("CA", "PED", "VL", "ML")   # calyx, peduncle, vertical and medial lobes
SYNTHETIC_OPTIC_ROIS = ("LA", "ME", "LOP")        # lamina, medulla, lobula plate
FLYWIRE_MB_NEUROPILS = ("MB_CA_L", "MB_CA_R", "MB_ML_L", "MB_ML_R", "MB_PED_L", "MB_PED_R", "MB_VL_L", "MB_VL_R")
FLYWIRE_OPTIC_NEUROPILS = ("LA_L", "LA_R", "ME_L", "ME_R", "LO_L", "LO_R", "LOP_L", "LOP_R", "AME_L", "AME_R")
# Every neuropil name of FlyWire release 783 (78: 35 paired with _L/_R, 8 unpaired), so a typo in
# 'flywire.optic_lobe.neuropils' stops the workflow at start-up instead of selecting nothing.
FLYWIRE_783_NEUROPILS = tuple(sorted(
    [f"{name}_{side}" for name in ("AL", "AME", "AMMC", "AOTU", "ATL", "AVLP", "BU", "CAN", "CRE", "EPA", "FLA", "GA",
                                   "GOR", "IB", "ICL", "IPS", "LA", "LAL", "LH", "LO", "LOP", "ME", "MB_CA", "MB_ML",
                                   "MB_PED", "MB_VL", "PLP", "PVLP", "SCL", "SIP", "SLP", "SMP", "SPS", "VES", "WED")
     for side in "LR"] + ["EB", "FB", "GNG", "NO", "OCG", "PB", "PRW", "SAD"]))

KINDS = {
    "synthetic_cx": SubstrateKind("synthetic_cx", "synthetic", CX_ROIS, "region",
                                  "SYNTHETIC CX-inspired ring-attractor connectome (procedurally generated)"),
    "synthetic_mb": SubstrateKind("synthetic_mb", "synthetic", SYNTHETIC_MB_ROIS, "region",
                                  "SYNTHETIC mushroom-body-like connectome (procedurally generated)"),
    "synthetic_optic": SubstrateKind("synthetic_optic", "synthetic", SYNTHETIC_OPTIC_ROIS, "region",
                                     "SYNTHETIC optic-lobe-like motion circuit (procedurally generated)"),
    "local": SubstrateKind("local", "local", (), "region", "local export directory"),
    "hemibrain_cx": SubstrateKind("hemibrain_cx", "neuprint", CX_ROIS, "region",
                                  "hemibrain v1.2.1 central complex (neuPrint)"),
    "hemibrain_mushroom_body": SubstrateKind("hemibrain_mushroom_body", "neuprint", ("MB(R)", "MB(L)"), "region",
                                             "hemibrain v1.2.1 mushroom body (neuPrint)"),
    "flywire_whole": SubstrateKind("flywire_whole", "zenodo", ("whole_brain",), "whole_brain",
                                   "FlyWire release 783 whole brain (Zenodo)"),
    "flywire_mushroom_body": SubstrateKind("flywire_mushroom_body", "zenodo", FLYWIRE_MB_NEUROPILS, "region",
                                           "FlyWire release 783 mushroom body (Zenodo)"),
    # Default primary ROIs; a run uses 'flywire.optic_lobe.neuropils' (see primary_rois).
    "flywire_optic_lobe": SubstrateKind("flywire_optic_lobe", "zenodo", FLYWIRE_OPTIC_NEUROPILS, "region",
                                        "FlyWire release 783 optic lobes (Zenodo)"),
}

def substrate_kind(config: dict[str, Any]) -> SubstrateKind:
    return KINDS[config["connectome"]]


def primary_rois(config: dict[str, Any]) -> list[str]:
    kind = substrate_kind(config)
    if kind.source == "local":
        return list(config["primary_rois"])
    if kind.connectome == "flywire_optic_lobe":   # the selected neuropils are the region
        return list(config["flywire"]["optic_lobe"]["neuropils"])
    return list(kind.primary_rois)


def is_synthetic(config: dict[str, Any]) -> bool:
    return KINDS[config["connectome"]].source == "synthetic"
