# One control substrate per (substrate, control, seed), stored with its invariants.


rule control:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
    output:
        control_file(),
    params:
        rho_target=substrate_value("graph", "rho_target"),
        spectral=substrate_value("graph", "spectral"),
        code=rule_code_hash("controls", "control"),
    log:
        substrate_log("controls/{control}_seed{seed}"),
    conda:
        "../envs/controls.yaml"
    script:
        "../workflow_scripts/control.py"


rule controls:
    input:
        sorted({path for experiment in EXPERIMENTS.values() for path in experiment_controls(experiment)}),
