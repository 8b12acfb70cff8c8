# Graph cache of one substrate: pools, scaled matrices, K, and the metadata that gathers them.


rule pools:
    input:
        [exports(f) for f in EXPORT_FILES],
    output:
        graph_file("pool_assignments.csv"),
    params:
        pool_rule=substrate_pool_rule,
        primary_rois=substrate_rois,
        pools=substrate_value("graph", "pools"),
        whole_brain_pool_fraction=substrate_value("graph", "whole_brain_pool_fraction"),
        code=rule_code_hash("graph", "pools"),
    log:
        substrate_log("pools"),
    conda:
        "../envs/graph.yaml"
    script:
        "../workflow_scripts/pools.py"


rule matrices:
    input:
        [exports(f) for f in EXPORT_FILES],
    output:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
    params:
        connectome=substrate_value("connectome"),
        rho_target=substrate_value("graph", "rho_target"),
        signed_policy=substrate_value("graph", "signed_policy"),
        sign_coverage_threshold=substrate_value("graph", "sign_coverage_threshold"),
        spectral=substrate_value("graph", "spectral"),
        code=rule_code_hash("graph", "matrices"),
    log:
        substrate_log("matrices"),
    conda:
        "../envs/graph.yaml"
    script:
        "../workflow_scripts/matrices.py"


rule k_estimate:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        pools=graph_file("pool_assignments.csv"),
    output:
        graph_file("k_estimate.json"),
    params:
        k=substrate_value("graph", "k"),
        code=rule_code_hash("graph", "k_estimate"),
    log:
        substrate_log("k_estimate"),
    conda:
        "../envs/graph.yaml"
    script:
        "../workflow_scripts/k_estimate.py"


rule graph_metadata:
    input:
        info=graph_file("matrix_info.json"),
        pools=graph_file("pool_assignments.csv"),
        k=graph_file("k_estimate.json"),
    output:
        graph_file("graph_metadata.json"),
    params:
        primary_rois=substrate_rois,
        whole_brain_pool_fraction=substrate_value("graph", "whole_brain_pool_fraction"),
        synthetic=substrate_is_synthetic,
        code=rule_code_hash("graph", "graph_metadata"),
    log:
        substrate_log("graph_metadata"),
    conda:
        "../envs/graph.yaml"
    script:
        "../workflow_scripts/graph_metadata.py"


rule graph:
    input:
        [graph_file(name, substrate) for substrate in SUBSTRATES for name in GRAPH_FILES],
