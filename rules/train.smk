# One training job per (substrate, task, mode, model, seed, train size); each writes only its own files.


rule train_model:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
        pools=graph_file("pool_assignments.csv"),
        k=graph_file("k_estimate.json"),
        control=job_control_input,
        splits=[split_file(stem) for stem in SPLITS],
    output:
        checkpoint=job_file("checkpoint.pt"),
        history=job_file("loss_history.csv"),
        metrics=job_file("metrics.csv"),
    params:
        task=TASK_PARAMS,
        training=lambda wc: {} if wc.model == "mean_predictor" else TRAINING_PARAMS,
        code=CODE["training"],
    threads: lambda wc: 1 if wc.model == "mean_predictor" else config["training"]["threads"]
    resources:
        gpu=lambda wc: 0 if wc.model == "mean_predictor" else 1,
    log:
        job_file("train.log"),
    benchmark:
        job_file("benchmark.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train.py"


rule train:
    input:
        full_run_jobs("metrics.csv", SUBSTRATE, TASK_VARIANT, MODE),
        sample_efficiency_jobs("metrics.csv", SUBSTRATE, TASK_VARIANT, MODE),
