# One experiment's results: aggregated tables, figures, summary.md and the run manifest.


rule aggregate:
    input:
        metrics=job_files("metrics.csv", sample_efficiency=False),
        histories=job_files("loss_history.csv", sample_efficiency=False),
        se_metrics=job_files("metrics.csv", sample_efficiency=True),
    output:
        by_seed=experiment_file("metrics_by_seed.csv"),
        summary=experiment_file("metrics_summary.csv"),
        history=experiment_file("loss_history.csv"),
        paired=experiment_file("paired_differences.csv"),
        sample_efficiency=experiment_file("sample_efficiency_by_seed.csv"),
    params:
        task=experiment_value("task", "name"),
        models=experiment_value("models"),
        primary=experiment_value("primary"),
        se_models=experiment_value("se_models"),
        seeds=experiment_value("seeds"),
        interval=experiment_value("config", "statistics", "interval"),
        code=rule_code_hash("results", "aggregate"),
    log:
        experiment_log("aggregate"),
    conda:
        "../envs/results.yaml"
    script:
        "../workflow_scripts/aggregate.py"


rule figure:
    input:
        by_seed=experiment_file("metrics_by_seed.csv"),
        history=experiment_file("loss_history.csv"),
        sample_efficiency=experiment_file("sample_efficiency_by_seed.csv"),
        metadata=experiment_input(graph_file, "graph_metadata.json"),
        examples=figure_examples,
    output:
        report(experiment_file("figures/{figure}.png"), category="Figures"),
    params:
        options=experiment_value("config", "figures"),
        task=experiment_value("task", "name"),
        task_cfg=experiment_value("task"),
        seeds=experiment_value("seeds"),
        example_models=figure_example_models,
        models=experiment_value("bptt_models"),
        se_models=experiment_value("se_models"),
        train_T=experiment_value("train_T"),
        code=rule_code_hash("results", "figure"),
    log:
        experiment_log("figure_{figure}"),
    conda:
        "../envs/results.yaml"
    script:
        "../workflow_scripts/figure.py"


rule summary:
    input:
        summary=experiment_file("metrics_summary.csv"),
        paired=experiment_file("paired_differences.csv"),
        metadata=experiment_input(graph_file, "graph_metadata.json"),
    output:
        report(experiment_file("summary.md"), category="Reports"),
    params:
        substrate=experiment_value("substrate"),
        task=experiment_value("task", "name"),
        mode=experiment_value("mode"),
        plasticity=experiment_value("config", "training", "plasticity", "rule"),
        models=experiment_value("bptt_models"),
        primary=experiment_value("primary"),
        seeds=experiment_value("seeds"),
        n_train=experiment_value("n_train"),
        train_T=experiment_value("train_T"),
        interval=experiment_value("config", "statistics", "interval"),
        code=rule_code_hash("results", "summary"),
    log:
        experiment_log("summary"),
    conda:
        "../envs/results.yaml"
    script:
        "../workflow_scripts/summary.py"


rule sweep_statistics:
    input:
        by_seed=experiment_file("metrics_by_seed.csv"),
    output:
        leaderboard=experiment_file("sweep/leaderboard.csv"),
        paired=experiment_file("sweep/paired_comparisons.csv"),
        matched=experiment_file("sweep/matched_topology_comparisons.csv"),
        report=report(experiment_file("sweep/sweep_report.md"), category="Sweep statistics"),
    params:
        task=experiment_value("task", "name"),
        primary=experiment_value("primary"),
        models=experiment_value("bptt_models"),
        seeds=experiment_value("seeds"),
        split=experiment_value("evaluation_split"),
        train_T=experiment_value("train_T"),
        n_train=experiment_value("n_train"),
        interval=experiment_value("config", "statistics", "interval"),
        code=rule_code_hash("results", "sweep_statistics"),
    log:
        experiment_log("sweep_statistics"),
    conda:
        "../envs/results.yaml"
    script:
        "../workflow_scripts/sweep_statistics.py"


rule manifest:
    input:
        exports=experiment_input(exports, *EXPORT_FILES, "provenance.json"),
        graph=experiment_input(graph_file, *GRAPH_FILES),
        controls=controls_of_experiment,
        splits=splits_of_experiment,
        checkpoints=job_files("checkpoint.pt"),
        results=[experiment_file(name) for name in TABLES + ("summary.md",) + SWEEP_FILES],
        reports=[experiment_file(f"reports/{name}.md") for name in REPORTS],
        figures=figures_of_experiment,
    output:
        experiment_file("run_manifest.json"),
    params:
        config=experiment_value("config"),
        code=rule_code_hash("results", "manifest"),
    log:
        experiment_log("manifest"),
    conda:
        "../envs/results.yaml"
    script:
        "../workflow_scripts/manifest.py"


rule results:
    input:
        [path for experiment in EXPERIMENTS.values() for path in experiment_targets(experiment)],
