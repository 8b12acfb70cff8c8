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
        code=CODE["acquire"],
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
            code=CODE["acquire"],
        log:
            log_file("local_exports", SUBSTRATE),
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/acquire.py"
