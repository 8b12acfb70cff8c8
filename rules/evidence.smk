# The evidence plan (config `evidence`, docs/evidence_planning.md): selector decisions with the prepared graphs'
# metadata, the low-power proxy, the checked evidence report, and the plan export with its cost estimate.
# The plan's experiments and cross-region families are ordinary ones (added in the Snakefile).
from connectome_bpu.evidence import evidence_overview

if EVIDENCE:
    logger.info(evidence_overview(PLAN))


wildcard_constraints:
    evidence_task=one_of(EVIDENCE.tasks if EVIDENCE else []),


rule select_connectome:
    input:
        metadata=selector_metadata,
    output:
        json=f"{EVIDENCE_DIR}/selectors/{{evidence_task}}.json",
        md=report(f"{EVIDENCE_DIR}/selectors/{{evidence_task}}.md", category="Evidence",
                  caption="../docs/captions/selector.rst"),
    params:
        available=EVIDENCE.available if EVIDENCE else None,
        planned=selector_planned,
        heading_bins=config["task"]["heading_bins"],
        code=rule_code_hash("evidence", "select_connectome"),
    log:
        f"{EVIDENCE_DIR}/logs/select_connectome_{{evidence_task}}.log",
    conda:
        "../envs/evidence.yaml"
    script:
        "../workflow_scripts/select_connectome.py"


rule low_power_proxy:
    input:
        graphs=[graph_file(name, substrate) for substrate in plan_substrates()
                for name in ("adjacency_unsigned.npz", "graph_metadata.json", "k_estimate.json",
                             "pool_assignments.csv", "graph_arrays.npz", "matrix_info.json")],
        by_seed=[experiment_file("metrics_by_seed.csv", item.experiment) for item in PLAN_ITEMS],
    output:
        **{name.split(".")[0]: path for name, path in LOW_POWER_FILES.items()},
    params:
        substrates=low_power_substrates(),
        experiments=[item.experiment for item in PLAN_ITEMS],
        bitwidths=list(EVIDENCE.bitwidths) if EVIDENCE else [],
        latency=dict(EVIDENCE.latency) if EVIDENCE else {},
        code=rule_code_hash("evidence", "low_power_proxy"),
    log:
        f"{EVIDENCE_DIR}/logs/low_power_proxy.log",
    conda:
        "../envs/evidence.yaml"
    script:
        "../workflow_scripts/low_power_proxy.py"


rule evidence_report:
    input:
        selectors=SELECTOR_FILES,
        low_power=list(LOW_POWER_FILES.values()),
        metadata=[graph_file("graph_metadata.json", substrate) for substrate in plan_substrates()],
        experiments=[experiment_file(name, item.experiment) for item in PLAN_ITEMS
                     for name in ("metrics_by_seed.csv", "summary.md", "run_manifest.json", *SWEEP_FILES)],
        transfer=CROSS_REGION_TARGETS if EVIDENCE and EVIDENCE.transfer else [],
        # every manifest the checklist verifies, cross-region conditions included
        manifests=[experiment_file("run_manifest.json", name) for name in (EVIDENCE.experiments if EVIDENCE else [])],
    output:
        report=report(EVIDENCE_REPORT_FILES["report"], category="Evidence",
                      caption="../docs/captions/evidence_report.rst"),
        checklist=EVIDENCE_REPORT_FILES["checklist"],
        figure=report(EVIDENCE_REPORT_FILES["figure"], category="Evidence",
                      caption="../docs/captions/connectome_advantage.rst"),
    params:
        plan=PLAN,
        configs=plan_configs(),
        interval=config["statistics"]["interval"],
        options=config["figures"],
        code=rule_code_hash("evidence", "evidence_report"),
    log:
        f"{EVIDENCE_DIR}/logs/evidence_report.log",
    conda:
        "../envs/evidence.yaml"
    script:
        "../workflow_scripts/evidence_report.py"


rule evidence_plan:
    output:
        md=f"{EVIDENCE_DIR}/plan.md",
        json=f"{EVIDENCE_DIR}/plan.json",
    params:
        plan=PLAN,
        snakefile=workflow.main_snakefile,
        config=config,
        configs=plan_configs(),
        state=evidence_state_fingerprint(),
        code=rule_code_hash("evidence", "evidence_plan"),
    log:
        f"{EVIDENCE_DIR}/logs/evidence_plan.log",
    conda:
        "../envs/evidence.yaml"
    script:
        "../workflow_scripts/evidence_plan.py"


rule evidence:
    input:
        evidence_targets,
