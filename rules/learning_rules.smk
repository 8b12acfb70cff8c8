# Learning-rule arms: per experiment with arms, the report that compares them (tables, figures, summary.md);
# and the seed-system checks, each rule's own small task, run before a rule is trusted on a connectome.

SEED_CHECKS_DIR = f"{RESULTS}/learning_rules/seed_checks"
ARM_EXPERIMENTS = [name for name, experiment in EXPERIMENTS.items() if experiment.arms]
SEED_CHECK_NAMES = list(config["seed_checks"]["checks"]) if config.get("seed_checks") else []
SEED_CHECK_TARGETS = [f"{SEED_CHECKS_DIR}/{check}/{name}" for check in SEED_CHECK_NAMES
                      for name in ("by_seed.csv", "curves.csv", "summary.md", f"{check}.png")]


wildcard_constraints:
    arm_experiment=one_of(ARM_EXPERIMENTS),
    check=one_of(SEED_CHECK_NAMES),
    seed=r"\d+",


rule learning_rules_report:
    input:
        by_seed=experiment_file("metrics_by_seed.csv", "{arm_experiment}"),
        history=experiment_file("loss_history.csv", "{arm_experiment}"),
        metadata=arm_experiment_metadata,
    output:
        metrics=experiment_file("learning_rules/arm_metrics.csv", "{arm_experiment}"),
        comparisons=experiment_file("learning_rules/arm_comparisons.csv", "{arm_experiment}"),
        summary=report(experiment_file("learning_rules/summary.md", "{arm_experiment}"), category="Learning rules"),
        curves=report(experiment_file("learning_rules/arm_learning_curves.png", "{arm_experiment}"),
                      category="Learning rules"),
        fidelity=report(experiment_file("learning_rules/gradient_fidelity.png", "{arm_experiment}"),
                        category="Learning rules"),
    params:
        experiment=arm_experiment_name,
        report=arm_report_settings,
        options=arm_experiment_figures,
        code=rule_code_hash("learning_rules", "learning_rules_report"),
    log:
        experiment_file("logs/learning_rules_report.log", "{arm_experiment}"),
    conda:
        "../envs/learning_rules.yaml"
    script:
        "../workflow_scripts/learning_rules_report.py"


rule seed_check_seed:
    output:
        by_seed=seed_check_seed_file("by_seed.csv"),
        curves=seed_check_seed_file("curves.csv"),
    params:
        preset=seed_check_settings()["preset"],
        code=rule_code_hash("learning_rules", "seed_check_seed"),
        check_code=seed_check_code,
    threads: 1
    log:
        seed_check_seed_file("seed_check_seed.log"),
    conda:
        "../envs/learning_rules.yaml"
    script:
        "../workflow_scripts/seed_check_seed.py"


rule seed_check:
    input:
        by_seed=seed_check_seed_files("by_seed.csv"),
        curves=seed_check_seed_files("curves.csv"),
    output:
        by_seed=f"{SEED_CHECKS_DIR}/{{check}}/by_seed.csv",
        curves=f"{SEED_CHECKS_DIR}/{{check}}/curves.csv",
        summary=report(f"{SEED_CHECKS_DIR}/{{check}}/summary.md", category="Learning rules"),
        figure=report(f"{SEED_CHECKS_DIR}/{{check}}/{{check}}.png", category="Learning rules"),
    params:
        seeds=list(seed_check_settings()["seeds"]),
        preset=seed_check_settings()["preset"],
        code=rule_code_hash("learning_rules", "seed_check"),
        check_code=seed_check_code,
    log:
        f"{SEED_CHECKS_DIR}/{{check}}/seed_check.log",
    conda:
        "../envs/learning_rules.yaml"
    script:
        "../workflow_scripts/seed_check.py"


rule seed_checks:
    input:
        SEED_CHECK_TARGETS,
