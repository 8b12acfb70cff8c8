# Task splits: generated once per task variant, shared by every substrate, model and seed.


rule task_split:
    output:
        split_file("{split_file}"),
    params:
        task=TASK_PARAMS,
        split=lambda wc: SPLITS[wc.split_file].name,
        code=CODE["tasks"],
    log:
        f"{RESULTS}/tasks/logs/{{task_variant}}/{{split_file}}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train.py"
