# One control substrate per (substrate, control, seed), stored with its invariants.


rule control:
    input:
        unsigned=graph_file("adjacency_unsigned.npz"),
        arrays=graph_file("graph_arrays.npz"),
        info=graph_file("matrix_info.json"),
    output:
        control_file(),
    params:
        rho_target=config["graph"]["rho_target"],
        spectral=SPECTRAL,
        code=CODE["controls"],
    log:
        log_file("controls/{control}_seed{seed}"),
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/controls.py"


rule controls:
    input:
        all_control_files(),
