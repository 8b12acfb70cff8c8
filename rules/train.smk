# One training job per (substrate, task variant, training variant, model, seed, train size); each writes
# only its own directory, so jobs can run anywhere a cluster executor puts them.


rule train_model:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
        pools=graph_file("pool_assignments.csv"),
        k=graph_file("k_estimate.json"),
        control=job_control_input,
        splits=task_split_files,
    output:
        checkpoint=job_file("checkpoint.pt"),
        history=job_file("loss_history.csv"),
        metrics=job_file("metrics.csv"),
        examples=job_file("test_examples.npz"),
    params:
        task=task_settings,
        training=training_settings,
        code=rule_code_hash("train", "train_model"),
    threads: train_threads
    resources:
        gpu=train_gpus,
    log:
        job_file("train.log"),
    benchmark:
        job_file("benchmark.tsv")
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_model.py"


rule train:
    input:
        sorted({path for experiment in EXPERIMENTS.values() for path in experiment_jobs(experiment, "metrics.csv")}),
