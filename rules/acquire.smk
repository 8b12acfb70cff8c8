# One rule per source; each writes the raw export schema (neurons.csv, roi_counts.csv, connections.csv)
# plus provenance.json under results/<substrate>/exports/. neuPrint and Zenodo sources plug in here.


rule synthetic_cx:
    output:
        [exports(f, "synthetic_cx") for f in EXPORT_FILES],
        provenance=exports("provenance.json", "synthetic_cx"),
    params:
        copies=config["synthetic_cx"]["copies"],
        seed=config["synthetic_cx"]["seed"],
        background_density=config["synthetic_cx"]["background_density"],
        code=CODE["synthetic"],
    log:
        log_file("synthetic_cx", "synthetic_cx"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/acquire.py"


if KIND.source == "local":

    rule local_exports:
        input:
            neurons=f"{config['local_exports']}/neurons.csv",
            connections=f"{config['local_exports']}/connections.csv",
        output:
            [exports(f, SUBSTRATE) for f in EXPORT_FILES],
            provenance=exports("provenance.json", SUBSTRATE),
        params:
            source_dir=config["local_exports"],
            primary_rois=PRIMARY_ROIS,
            code=CODE["local"],
        log:
            log_file("local_exports", SUBSTRATE),
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/acquire.py"


if KIND.source == "neuprint":
    # The download is cached per server, dataset and connectome under resources/ and shared by every run;
    # the run's exports are a validated copy. The token is checked when the workflow starts.

    rule neuprint_download:
        output:
            [f"{NEUPRINT_CACHE}/{f}" for f in EXPORT_FILES + ["roi_hierarchy.json"]],
            provenance=f"{NEUPRINT_CACHE}/provenance.json",
        params:
            connectome=config["connectome"],
            server=config["neuprint"]["server"],
            dataset=config["neuprint"]["dataset"],
            rois=PRIMARY_ROIS,
            code=CODE["neuprint"],
        log:
            f"{NEUPRINT_CACHE}/download.log",
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/acquire.py"


if KIND.source == "zenodo":
    # Release files are fetched once per release into resources/flywire/<release>/ and verified against
    # pinned checksums; they are `ancient` inputs, so a changed timestamp never triggers a rerun.

    rule flywire_file:
        output:
            f"{FLYWIRE_CACHE}/{{flywire_file}}",
        params:
            expected=lambda wc: FLYWIRE_FILES[wc.flywire_file],   # content is fixed by checksum, not by code
        log:
            f"{FLYWIRE_CACHE}/logs/{{flywire_file}}.log",
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/acquire.py"


if KIND.source in ("neuprint", "zenodo"):

    rule cached_exports:
        input:
            ancient(f"{NEUPRINT_CACHE}/provenance.json") if KIND.source == "neuprint" else
            [ancient(f"{FLYWIRE_CACHE}/{name}") for name in FLYWIRE_FILES],
        output:
            [exports(f, SUBSTRATE) for f in EXPORT_FILES],
            provenance=exports("provenance.json", SUBSTRATE),
        params:
            source=KIND.source,
            connectome=config["connectome"],
            release=config["flywire"]["release"],
            nt_confidence=config["flywire"]["nt_confidence"],
            code=CODE["cached_exports"],
        resources:
            mem_mb=16000 if KIND.source == "zenodo" else 2000,
        log:
            log_file("cached_exports", SUBSTRATE),
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/acquire.py"
