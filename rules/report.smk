# Validation reports of one experiment; every PASS in them comes from a computed check that can fail.


rule data_validation:
    input:
        exports=experiment_input(exports, *EXPORT_FILES),
        pools=experiment_input(graph_file, "pool_assignments.csv"),
        metadata=experiment_input(graph_file, "graph_metadata.json"),
        arrays=experiment_input(graph_file, "graph_arrays.npz"),
        splits=splits_of_experiment,
    output:
        report(experiment_file("reports/data_validation.md"), category="Reports"),
    params:
        task=task_of_experiment,
        code=rule_code_hash("report", "data_validation"),
    log:
        experiment_log("data_validation"),
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/data_validation.py"


rule bpu_validation:
    input:
        unsigned=experiment_input(graph_file, "adjacency_unsigned.npz"),
        arrays=experiment_input(graph_file, "graph_arrays.npz"),
        info=experiment_input(graph_file, "matrix_info.json"),
        metadata=experiment_input(graph_file, "graph_metadata.json"),
        connections=experiment_input(exports, "connections.csv"),
        pools=experiment_input(graph_file, "pool_assignments.csv"),
        k=experiment_input(graph_file, "k_estimate.json"),
    output:
        report(experiment_file("reports/bpu_validation.md"), category="Reports"),
    params:
        task=task_of_experiment,
        mode=experiment_value("mode"),
        dense_max_neurons=experiment_value("config", "training", "dense_max_neurons"),
        plasticity=experiment_value("config", "training", "plasticity"),
        primary=experiment_value("primary"),
        k_min=experiment_value("config", "graph", "k", "min"),
        k_max=experiment_value("config", "graph", "k", "max"),
        spectral=experiment_value("config", "graph", "spectral"),
        code=rule_code_hash("report", "bpu_validation"),
    log:
        experiment_log("bpu_validation"),
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/bpu_validation.py"


rule control_validation:
    input:
        unsigned=experiment_input(graph_file, "adjacency_unsigned.npz"),
        arrays=experiment_input(graph_file, "graph_arrays.npz"),
        info=experiment_input(graph_file, "matrix_info.json"),
        metadata=experiment_input(graph_file, "graph_metadata.json"),
        controls=controls_of_experiment,
        by_seed=experiment_file("metrics_by_seed.csv"),
    output:
        report(experiment_file("reports/control_validation.md"), category="Reports"),
    params:
        rho_target=experiment_value("config", "graph", "rho_target"),
        spectral=experiment_value("config", "graph", "spectral"),
        code=rule_code_hash("report", "control_validation"),
    log:
        experiment_log("control_validation"),
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/control_validation.py"


rule reports:
    input:
        [experiment_file(f"reports/{name}.md", experiment) for experiment in EXPERIMENTS for name in REPORTS],
