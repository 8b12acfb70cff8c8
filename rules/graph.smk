# Graph cache: pools, scaled matrices, K, and the metadata that gathers them.


rule pools:
    input:
        [exports(f) for f in EXPORT_FILES],
    output:
        graph_file("pool_assignments.csv"),
    params:
        pool_rule=KIND.pool_rule,
        primary_rois=PRIMARY_ROIS,
        pools=config["graph"]["pools"],
        whole_brain_pool_fraction=config["graph"]["whole_brain_pool_fraction"],
        code=CODE["graph"],
    log:
        log_file("pools"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/graph.py"


rule matrices:
    input:
        [exports(f) for f in EXPORT_FILES],
    output:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
    params:
        connectome=config["connectome"],
        rho_target=config["graph"]["rho_target"],
        signed_policy=config["graph"]["signed_policy"],
        sign_coverage_threshold=config["graph"]["sign_coverage_threshold"],
        spectral=SPECTRAL,
        code=CODE["graph"],
    log:
        log_file("matrices"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/graph.py"


rule k_estimate:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        pools=graph_file("pool_assignments.csv"),
    output:
        graph_file("k_estimate.json"),
    params:
        k=config["graph"]["k"],
        code=CODE["graph"],
    log:
        log_file("k_estimate"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/graph.py"


rule graph_metadata:
    input:
        info=graph_file("matrix_info.json"),
        pools=graph_file("pool_assignments.csv"),
        k=graph_file("k_estimate.json"),
    output:
        graph_file("graph_metadata.json"),
    params:
        primary_rois=PRIMARY_ROIS,
        whole_brain_pool_fraction=config["graph"]["whole_brain_pool_fraction"],
        synthetic=is_synthetic(config),
        code=CODE["graph"],
    log:
        log_file("graph_metadata"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/graph.py"


rule graph:
    input:
        graph_file("graph_metadata.json", SUBSTRATE),
        graph_file("adjacency_unsigned.npz", SUBSTRATE),
