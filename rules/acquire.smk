# One rule per source; each writes the export schema (neurons.csv, roi_counts.csv, connections.csv) plus
# provenance.json under results/<substrate>/exports/. Downloads land in the shared resources/ cache.


rule synthetic_cx:
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(substrates_of("synthetic_cx")),
    params:
        settings=substrate_value("synthetic_cx"),
        code=rule_code_hash("acquire", "synthetic_cx"),
    log:
        substrate_log("synthetic_cx"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/synthetic_cx.py"


rule synthetic_mb:
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(substrates_of("synthetic_mb")),
    params:
        settings=substrate_value("synthetic_mb"),
        code=rule_code_hash("acquire", "synthetic_mb"),
    log:
        substrate_log("synthetic_mb"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/synthetic_mb.py"


rule synthetic_optic:
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(substrates_of("synthetic_optic")),
    params:
        settings=substrate_value("synthetic_optic"),
        code=rule_code_hash("acquire", "synthetic_optic"),
    log:
        substrate_log("synthetic_optic"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/synthetic_optic.py"


# A substrate cut or expanded to another substrate's neuron and edge count (cross-region size control).
rule size_matched_exports:
    input:
        source=size_match_source_exports,
        target=size_match_target_info,
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(SIZE_MATCHED),
    params:
        seed=size_match_seed,
        code=rule_code_hash("acquire", "size_matched_exports"),
    log:
        substrate_log("size_matched_exports"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/size_matched_exports.py"


rule local_exports:
    input:
        unpack(local_export_files),
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(substrates_from("local")),
    params:
        source_dir=substrate_value("local_exports"),
        primary_rois=substrate_rois,
        code=rule_code_hash("acquire", "local_exports"),
    log:
        substrate_log("local_exports"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/local_exports.py"


# neuPrint: cached per server, dataset and region; the token is checked when the workflow starts.
rule neuprint_download:
    output:
        [f"{NEUPRINT_CACHE}/{{connectome}}/{f}" for f in (*EXPORT_FILES, "roi_hierarchy.json")],
        provenance=f"{NEUPRINT_CACHE}/{{connectome}}/provenance.json",
    params:
        connectome="{connectome}",
        server=config["neuprint"]["server"],
        dataset=config["neuprint"]["dataset"],
        rois=neuprint_rois,
        code=rule_code_hash("acquire", "neuprint_download"),
    log:
        f"{NEUPRINT_CACHE}/{{connectome}}/download.log",
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/neuprint_download.py"


# FlyWire: each release file is fetched once into resources/flywire/<release>/ and verified against its
# pinned checksum; its content is fixed by that checksum, so the rule carries no code hash.
rule flywire_file:
    output:
        f"{FLYWIRE_CACHE}/{{flywire_file}}",
    params:
        expected=flywire_expected,
    log:
        f"{FLYWIRE_CACHE}/logs/{{flywire_file}}.log",
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/flywire_file.py"


rule cached_exports:
    input:
        cached_source_files,
    output:
        [exports(f) for f in EXPORT_FILES],
        provenance=exports("provenance.json"),
    wildcard_constraints:
        substrate=one_of(substrates_from("neuprint", "zenodo")),
    params:
        source=cached_source,
        connectome=substrate_value("connectome"),
        release=config["flywire"]["release"],
        nt_confidence=config["flywire"]["nt_confidence"],
        optic_lobe=flywire_optic_lobe_settings,
        code=rule_code_hash("acquire", "cached_exports"),
    resources:
        mem_mb=cached_exports_memory,
    log:
        substrate_log("cached_exports"),
    conda:
        "../envs/acquire.yaml"
    script:
        "../workflow_scripts/cached_exports.py"
