# Validation reports (and, with training, metrics aggregation, figures and the summary).


rule data_validation:
    input:
        exports=[exports(f) for f in EXPORT_FILES],
        pools=graph_file("pool_assignments.csv"),
        metadata=graph_file("graph_metadata.json"),
        arrays=graph_file("graph_arrays.npz"),
        splits=[split_file(stem) for stem in SPLITS],
    output:
        report(run_file("reports/data_validation.md"), category="Reports"),
    params:
        task=TASK_PARAMS,
        code=CODE["reports"],
    log:
        log_file("reports/{task_variant}_{mode}_data_validation"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/reports.py"


rule bpu_validation:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
        metadata=graph_file("graph_metadata.json"),
        connections=exports("connections.csv"),
        pools=graph_file("pool_assignments.csv"),
        k=graph_file("k_estimate.json"),
    output:
        report(run_file("reports/bpu_validation.md"), category="Reports"),
    params:
        task=TASK_PARAMS,
        mode=MODE,
        dense_max_neurons=config["training"]["dense_max_neurons"],
        primary=PRIMARY_MODEL,
        code=CODE["reports"],
        k_min=config["graph"]["k"]["min"],
        k_max=config["graph"]["k"]["max"],
        spectral=SPECTRAL,
    log:
        log_file("reports/{task_variant}_{mode}_bpu_validation"),
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/reports.py"


rule control_validation:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
        metadata=graph_file("graph_metadata.json"),
        controls=lambda wc: all_control_files(wc.substrate),
        by_seed=run_file("metrics_by_seed.csv"),
    output:
        report(run_file("reports/control_validation.md"), category="Reports"),
    params:
        rho_target=config["graph"]["rho_target"],
        spectral=SPECTRAL,
        code=CODE["reports"],
    log:
        log_file("reports/{task_variant}_{mode}_control_validation"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/reports.py"


rule reports:
    input:
        [run_file(f"reports/{name}.md", SUBSTRATE, TASK_VARIANT, MODE)
         for name in ("data_validation", "bpu_validation", "control_validation")],


rule aggregate:
    input:
        metrics=full_run_jobs("metrics.csv"),
        histories=full_run_jobs("loss_history.csv"),
        se_metrics=sample_efficiency_jobs("metrics.csv"),
    output:
        by_seed=run_file("metrics_by_seed.csv"),
        summary=run_file("metrics_summary.csv"),
        history=run_file("loss_history.csv"),
        paired=run_file("paired_differences.csv"),
        sample_efficiency=run_file("sample_efficiency_by_seed.csv"),
    params:
        task=config["task"]["name"],
        models=MODELS,
        primary=PRIMARY_MODEL,
        se_models=SE_MODELS,
        interval=config["statistics"]["interval"],
        code=CODE["results"],
    log:
        log_file("reports/{task_variant}_{mode}_aggregate"),
    conda:
        "../envs/plotting.yaml"
    script:
        "../workflow_scripts/results.py"


rule figure:
    input:
        by_seed=run_file("metrics_by_seed.csv"),
        history=run_file("loss_history.csv"),
        sample_efficiency=run_file("sample_efficiency_by_seed.csv"),
        metadata=graph_file("graph_metadata.json"),
    output:
        report(run_file("figures/{figure}.png"), category="Figures"),
    params:
        options=config["figures"],
        task=config["task"]["name"],
        models=MODELS,
        se_models=SE_MODELS,
        train_T=TRAIN_T,
        code=CODE["figures"],
    log:
        log_file("reports/{task_variant}_{mode}_figure_{figure}"),
    conda:
        "../envs/plotting.yaml"
    script:
        "../workflow_scripts/results.py"


rule summary:
    input:
        summary=run_file("metrics_summary.csv"),
        paired=run_file("paired_differences.csv"),
        metadata=graph_file("graph_metadata.json"),
    output:
        report(run_file("summary.md"), category="Reports"),
    params:
        task=config["task"]["name"],
        mode=MODE,
        models=MODELS,
        primary=PRIMARY_MODEL,
        seeds=SEEDS,
        n_train=N_TRAIN,
        train_T=TRAIN_T,
        interval=config["statistics"]["interval"],
        code=CODE["summary"],
    log:
        log_file("reports/{task_variant}_{mode}_summary"),
    conda:
        "../envs/plotting.yaml"
    script:
        "../workflow_scripts/results.py"


rule results:
    input:
        run_file("summary.md", SUBSTRATE, TASK_VARIANT, MODE),
        run_file("run_manifest.json", SUBSTRATE, TASK_VARIANT, MODE),
        [run_file(f"figures/{name}.png", SUBSTRATE, TASK_VARIANT, MODE)
         for name in ("error_vs_sequence_length", "loss_curve", "error_vs_noise", "sample_efficiency")],


rule manifest:
    input:
        exports=[exports(f) for f in EXPORT_FILES + ["provenance.json"]],
        graph=[graph_file(f) for f in ("pool_assignments.csv", "adjacency_unsigned.npz", "graph_arrays.npz",
                                       "matrix_info.json", "k_estimate.json", "graph_metadata.json")],
        controls=lambda wc: all_control_files(wc.substrate),
        splits=[split_file(stem) for stem in SPLITS],
        checkpoints=full_run_jobs("checkpoint.pt") + sample_efficiency_jobs("checkpoint.pt"),
        results=[run_file(f"{name}") for name in ("metrics_by_seed.csv", "metrics_summary.csv",
                                                    "loss_history.csv", "paired_differences.csv",
                                                    "sample_efficiency_by_seed.csv", "summary.md")],
        reports=[run_file(f"reports/{name}.md") for name in ("data_validation", "bpu_validation",
                                                               "control_validation")],
        figures=[run_file(f"figures/{name}.png") for name in ("error_vs_sequence_length", "loss_curve",
                                                                "error_vs_noise", "sample_efficiency")],
    output:
        run_file("run_manifest.json"),
    params:
        config=config,
        repo=workflow.basedir,
    log:
        log_file("reports/{task_variant}_{mode}_manifest"),
    conda:
        "../envs/plotting.yaml"
    script:
        "../workflow_scripts/results.py"
