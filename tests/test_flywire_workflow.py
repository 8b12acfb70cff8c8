"""flywire_whole end to end: a loopback Zenodo stand-in -> download -> exports -> graph -> training; then
flywire_optic_lobe, capped, from the same cached download through the graph to its data-validation report.

The flywire_whole run trains its default models (the whole_brain preset) with one seed, no sample-efficiency
subsets and one test length and noise level, up to the aggregated metrics and the BPU report."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from conftest import experiment_dir, job_counts, run_snakemake, write_config

pytestmark = pytest.mark.workflow
RELEASE = "tiny"
OPTIC = ["ME_R", "LO_R", "LOP_R"]   # the optic neuropils of the tiny release


def make_release(directory: Path, n: int = 400, edges: int = 6000, seed: int = 0) -> dict:
    """A small FlyWire-like release: 18-digit root ids (stored as uint64) and a per-neuropil table.

    Rows are optic (70 %) or central, except that 40 neurons receive only central rows and 40 others send
    only central rows: the optic selection's input and output neurons under the region pool rule.
    """
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(720575940600000000, 720575940600000000 + 10 * n, dtype=np.uint64), n,
                             replace=False))
    np.save(directory / f"proofread_root_ids_{RELEASE}.npy", ids)
    pre, post = rng.integers(0, n, edges), rng.integers(0, n, edges)
    keep = pre != post
    pre, post = pre[keep], post[keep]
    nts = rng.dirichlet(np.ones(6), size=len(pre)).astype(np.float32)
    role = rng.permutation(n)
    central_only = np.isin(post, role[:40]) | np.isin(pre, role[40:80]) | (rng.random(len(pre)) >= 0.7)
    neuropil = np.where(central_only, rng.choice(["FB", "EB", "MB_CA_L", "LAL_R"], len(pre)),
                        rng.choice(OPTIC, len(pre)))
    table = pa.table({
        "pre_pt_root_id": pa.array(ids[pre].astype(np.int64)), "post_pt_root_id": pa.array(ids[post].astype(np.int64)),
        "neuropil": pa.array(neuropil),
        "syn_count": pa.array(rng.integers(1, 30, len(pre)).astype(np.int32)),
        **{f"{nt}_avg": pa.array(nts[:, i]) for i, nt in enumerate(("gaba", "ach", "glut", "oct", "ser", "da"))},
    })
    feather.write_feather(table, directory / f"proofread_connections_{RELEASE}.feather")
    return {p.name: {"bytes": p.stat().st_size, "md5": hashlib.md5(p.read_bytes()).hexdigest()}
            for p in directory.iterdir()}


class CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        CountingHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def zenodo(tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    files = make_release(served)
    CountingHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(CountingHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()


def test_flywire_whole_from_loopback_server_through_training(tmp_path: Path, zenodo):
    base_url, files = zenodo
    workdir = tmp_path / "work"
    workdir.mkdir()
    flywire = {"release": RELEASE, "base_url": base_url, "files": files,
               "download": {"retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 10}}
    write_config(workdir, {"connectome": "flywire_whole", "models": None, "comparison": "default",
                           "flywire": flywire, "seeds": [0],
                           "task": {"sample_efficiency_fractions": [1.0], "test": {"T": [20]},
                                    "test_noise": {"noise": [0.1]}}})
    run = experiment_dir(workdir)
    targets = [str((run / name).relative_to(workdir)) for name in ("metrics_by_seed.csv", "reports/bpu_validation.md")]
    plan = job_counts(run_snakemake(workdir, *targets).stderr)   # a real run logs its plan there
    # the two release files, the exports made from them, and a training job per default model (and the mean predictor)
    assert plan["flywire_file"] == 2 and plan["cached_exports"] == 1 and plan["train_model"] == 4, plan
    by_seed = (run / "metrics_by_seed.csv").read_text()
    for model in ("connectome_bpu", "random", "weight_shuffle", "mean_predictor"):
        assert f",{model}," in by_seed
    provenance = json.loads((workdir / "results/flywire_whole/exports/provenance.json").read_text())
    assert provenance["source"] == "zenodo" and provenance["release"] == RELEASE
    metadata = json.loads((workdir / "results/flywire_whole/graph/graph_metadata.json").read_text())
    assert metadata["primary_rois"] == ["whole_brain"] and metadata["N"] == 400
    assert "FAIL" not in (run / "reports/bpu_validation.md").read_text()
    assert len([r for r in CountingHandler.requests if "proofread" in r]) == 2
    # Cached downloads are ancient: a newer timestamp does not make anything stale.
    for name in files:
        os.utime(workdir / "resources/flywire" / RELEASE / name)
    assert "Nothing to be done" in run_snakemake(workdir, "-n", *targets).stdout

    # flywire_optic_lobe, capped, in the same tree: made from the cached files (the server sees no request),
    # through pools and matrices to a data-validation report without a FAIL.
    requests = len(CountingHandler.requests)
    write_config(workdir, {"connectome": "flywire_optic_lobe", "models": None, "comparison": "default",
                           "flywire": {**flywire, "optic_lobe": {"neuropils": OPTIC, "max_neurons": 150}}})
    report = experiment_dir(workdir) / "reports" / "data_validation.md"
    jobs = job_counts(run_snakemake(workdir, str(report.relative_to(workdir))).stderr)   # a real run logs there
    assert CountingHandler.requests[requests:] == []
    assert "flywire_file" not in jobs and jobs["cached_exports"] == 1 and jobs["data_validation"] == 1
    text = report.read_text()
    assert "FAIL" not in text and "PASS" in text
    provenance = json.loads((workdir / "results/flywire_optic_lobe/exports/provenance.json").read_text())
    cap = provenance["normalisation"]["cap"]
    assert provenance["primary_rois"] == OPTIC and provenance["release"] == RELEASE
    assert cap["max_neurons"] == 150 and cap["neurons_after"] <= 150 < cap["neurons_before"]
    metadata = json.loads((workdir / "results/flywire_optic_lobe/graph/graph_metadata.json").read_text())
    assert metadata["primary_rois"] == OPTIC and metadata["N"] == cap["neurons_after"]


@pytest.mark.parametrize("connectome", ["hemibrain_cx", "hemibrain_mushroom_body"])
def test_neuprint_substrate_without_token_stops_at_once(workdir: Path, connectome: str, monkeypatch):
    monkeypatch.delenv("NEUPRINT_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("NEUPRINT_TOKEN", raising=False)
    proc = run_snakemake(workdir, "--config", f"connectome={connectome}", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "NEUPRINT_APPLICATION_CREDENTIALS" in output and "NEUPRINT_TOKEN" in output
    assert not (workdir / "results").exists()


def test_flywire_plan_lists_download_and_downstream_jobs(workdir: Path):
    plan = job_counts(run_snakemake(workdir, "-n", "--config", "connectome=flywire_whole", "models=null").stdout)
    assert plan["flywire_file"] == 2 and plan["cached_exports"] == 1
    assert {"pools", "matrices", "k_estimate", "control", "train_model", "summary", "figure"} <= set(plan)
    # A neuropil name release 783 does not have stops the workflow at start-up, before any job.
    proc = run_snakemake(workdir, "-n", "--config", "connectome=flywire_optic_lobe",
                         "flywire={optic_lobe: {neuropils: [ME_R, LOBULA_R]}}", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Job stats" not in output
    assert "'flywire.optic_lobe.neuropils'" in output and "'LOBULA_R' -> 'LO_R'" in output


def test_hemibrain_exports_download_once_into_the_shared_cache(tmp_path: Path, monkeypatch):
    """neuPrint through the real workflow: a TLS stand-in server, the token from NEUPRINT_TOKEN only."""
    from fake_neuprint import FakeNeuprint

    workdir = tmp_path / "work"
    workdir.mkdir()
    with FakeNeuprint(token="workflow-token") as fake:
        for name, value in fake.client_environment(tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NEUPRINT_APPLICATION_CREDENTIALS", raising=False)
        monkeypatch.setenv("NEUPRINT_TOKEN", "workflow-token")
        write_config(workdir, {"connectome": "hemibrain_cx", "neuprint": {"server": fake.url}})
        target = "results/hemibrain_cx/exports/connections.csv"
        run_snakemake(workdir, target)
        cached = list((workdir / "resources/neuprint").rglob("provenance.json"))
        assert len(cached) == 1 and "hemibrain_v1.2.1" in str(cached[0])
        provenance = json.loads((workdir / "results/hemibrain_cx/exports/provenance.json").read_text())
        assert provenance["source"] == "neuprint" and provenance["cache_dir"] == str(cached[0].parent.resolve())
        queries = len(fake.requests)
        # The run's exports are rebuilt from the cache without asking the server (and without a token).
        (workdir / target).unlink()
        monkeypatch.delenv("NEUPRINT_TOKEN")
        run_snakemake(workdir, target)
        assert len(fake.requests) == queries
