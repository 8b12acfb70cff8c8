# Task splits: generated once per task variant, shared by every substrate, model and seed.


rule task_split:
    output:
        split_file(),
    params:
        task=task_settings,
        split=split_name,
        code=rule_code_hash("tasks", "task_split"),
    log:
        f"{RESULTS}/tasks/logs/{{task_variant}}/{{split_file}}.log",
    conda:
        "../envs/tasks.yaml"
    script:
        "../workflow_scripts/task_split.py"
