# Cross-region transfer: the conditions are ordinary experiments; this rule pairs them over seeds.


rule cross_region:
    input:
        by_seed=[experiment_file("metrics_by_seed.csv", info["experiment"]) for info in CROSS_REGION_CONDITIONS],
        size_matched=[exports("provenance.json", substrate) for substrate in CROSS_REGION_SIZE_MATCHED],
    output:
        success=f"{CROSS_REGION}/cross_region_success_by_seed.csv",
        advantage=f"{CROSS_REGION}/cross_region_advantage.csv",
        summary=report(f"{CROSS_REGION}/summary.md", category="Cross-region"),
        figure=report(f"{CROSS_REGION}/figures/cross_region_task_success.png", category="Cross-region"),
    params:
        conditions=CROSS_REGION_CONDITIONS,
        interval=config["statistics"]["interval"],
        options=config["figures"],
        code=rule_code_hash("cross_region", "cross_region"),
    log:
        f"{CROSS_REGION}/logs/cross_region.log",
    conda:
        "../envs/cross_region.yaml"
    script:
        "../workflow_scripts/cross_region.py"
