# Learning-rule arms: per experiment with arms, the report that compares them (tables, figures, summary.md);
# and the seed-system checks, each rule's own small task, run before a rule is trusted on a connectome.

from connectome_bpu.code_deps import module_code_hash
from connectome_bpu.seed_checks import check_module

SEED_CHECKS_DIR = f"{RESULTS}/learning_rules/seed_checks"
ARM_EXPERIMENTS = [name for name, experiment in EXPERIMENTS.items() if experiment.arms]
SEED_CHECK_NAMES = list(config["seed_checks"]["checks"]) if config.get("seed_checks") else []
SEED_CHECK_TARGETS = [f"{SEED_CHECKS_DIR}/{check}/{name}" for check in SEED_CHECK_NAMES
                      for name in ("by_seed.csv", "curves.csv", "summary.md", f"{check}.png")]


wildcard_constraints:
    arm_experiment=one_of(ARM_EXPERIMENTS),
    check=one_of(SEED_CHECK_NAMES),
    seed=r"\d+",


def arm_experiment_name(wildcards):
    return wildcards.arm_experiment


def arm_experiment_metadata(wildcards):
    return graph_file("graph_metadata.json", EXPERIMENTS[wildcards.arm_experiment].substrate)


def arm_experiment_figures(wildcards):
    return EXPERIMENTS[wildcards.arm_experiment].config["figures"]


def arm_report_settings(wildcards):
    """What the learning-rule report of an experiment compares (connectome_bpu.rules.learning_rules)."""
    experiment = EXPERIMENTS[wildcards.arm_experiment]
    return {"task": experiment.task["name"], "primary": experiment.primary, "arms": experiment.arms,
            "models": list(experiment.models), "seeds": list(experiment.seeds),
            "split": experiment.evaluation_split, "T": experiment.train_T, "n_train": experiment.n_train,
            "epochs": experiment.config["training"]["epochs"], "level": experiment.config["statistics"]["interval"],
            "threshold_margin": experiment.config["training"]["learning_rules"]["threshold_margin"]}


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


def seed_check_settings():
    """Which seeds and preset every seed-system check runs (top-level ``seed_checks`` of the config)."""
    return config.get("seed_checks") or {"seeds": [], "preset": "default"}


def seed_check_seed_file(name):
    """One seed's table of a check: ``name`` is by_seed.csv or curves.csv."""
    return f"{SEED_CHECKS_DIR}/{{check}}/seeds/seed{{seed}}/{name}"


def seed_check_seed_files(name):
    """The per-seed tables ``name`` of the check in the wildcards, one per configured seed."""
    def files(wildcards):
        return [f"{SEED_CHECKS_DIR}/{wildcards.check}/seeds/seed{seed}/{name}"
                for seed in seed_check_settings()["seeds"]]
    return files


def seed_check_code(wildcards):
    """Code hash of the check's own module, which the rule functions load by name (connectome_bpu.seed_checks)."""
    return module_code_hash(check_module(wildcards.check))


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
