"""connectome=local through the real workflow: a valid export builds the graph; bad ones fail cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from connectome_bpu.sources.synthetic_cx import write_synthetic_cx
from conftest import run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "export"
    write_synthetic_cx(directory, copies=1, seed=3, background_density=0.0, transmitter_coverage=1.0)
    (directory / "provenance.json").unlink()
    return directory


def _local(workdir: Path, export: Path, *targets: str, check: bool = True):
    return run_snakemake(workdir, *targets, "--config", "connectome=local", f"local_exports={export}",
                         "local_name=my_export", "primary_rois=[EB,PB,FB,\"NO\"]", check=check)


def test_local_export_builds_graph_cache(workdir: Path, export_dir: Path):
    _local(workdir, export_dir, "graph", "controls")
    graph = workdir / "results/my_export/graph"
    metadata = json.loads((graph / "graph_metadata.json").read_text())
    assert metadata["N"] == len(pd.read_csv(export_dir / "neurons.csv"))
    assert metadata["connectome"] == "local" and not metadata["synthetic"]
    provenance = json.loads((workdir / "results/my_export/exports/provenance.json").read_text())
    assert provenance["source"] == "local"
    assert (workdir / "results/my_export/controls/random/seed1.npz").is_file()
    assert "Nothing to be done" in _local(workdir, export_dir, "graph", "controls", "-n").stdout


def test_duplicate_body_id_fails_with_one_clear_error_and_no_output(workdir: Path, export_dir: Path):
    neurons = pd.read_csv(export_dir / "neurons.csv")
    pd.concat([neurons, neurons.iloc[[0]]]).to_csv(export_dir / "neurons.csv", index=False)
    proc = _local(workdir, export_dir, "graph", check=False)
    assert proc.returncode != 0
    # One plain block names the rule, the problem and the log; no Python traceback reaches the user.
    block = proc.stdout + proc.stderr
    assert "connectome-bpu: rule 'local_exports' stopped" in block and "duplicated bodyId" in block
    assert "(log: results/my_export/logs/local_exports.log)" in block and "Traceback" not in block
    assert "duplicated bodyId" in _logs(workdir)
    assert not (workdir / "results/my_export/exports/neurons.csv").exists()


def test_edge_to_unknown_neuron_fails_cleanly(workdir: Path, export_dir: Path):
    edges = pd.read_csv(export_dir / "connections.csv")
    edges.loc[0, "bodyId_post"] = 12345
    edges.to_csv(export_dir / "connections.csv", index=False)
    proc = _local(workdir, export_dir, "graph", check=False)
    assert proc.returncode != 0 and "not in neurons.csv" in _logs(workdir)
    assert not list((workdir / "results/my_export/exports").glob("*.csv"))


def test_empty_sensory_pool_stops_the_pool_rule(workdir: Path, export_dir: Path):
    neurons = pd.read_csv(export_dir / "neurons.csv").assign(type="X", instance="synthetic X")
    neurons.to_csv(export_dir / "neurons.csv", index=False)
    # every synapse inside the primary ROIs: no neuron is input- or output-dominated
    roi = neurons[["bodyId", "pre", "post"]].assign(roi="EB")
    roi.to_csv(export_dir / "roi_counts.csv", index=False)
    proc = _local(workdir, export_dir, "graph", check=False)
    assert proc.returncode != 0
    assert "sensory" in _logs(workdir) and "empty" in _logs(workdir)
    assert not (workdir / "results/my_export/graph/pool_assignments.csv").exists()


def _logs(workdir: Path) -> str:
    return "\n".join(p.read_text() for p in (workdir / "results/my_export/logs").rglob("*.log"))
