rule prepare_data:
    input:
        model=MODEL_DIR,
        train=local_files(config["speciality"]["train"]),
    output:
        data=directory(TRAIN_DATA),
        report=TRAIN_REPORT,
    params:
        train=config["speciality"]["train"],  # the entries with their options (Hub ids, columns, format)
        max_length=config["training"]["max_length"],
        loss_on=config["training"]["loss_on"],
        truncation=config["training"]["truncation"],
        max_dropped_share=config["training"]["max_dropped_share"],
        code=code_hash("cofitune.stages.data:prepare_data"),
    log:
        log_file("prepare_data"),
    benchmark:
        benchmark_file("prepare_data")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/prepare_data.py"


rule make_tasks:
    input:
        model=MODEL_DIR,
        speciality=[t["test"] for t in config["speciality"]["tasks"].values()],
        versatility=list(config["versatility"]["local_tasks"].values()),
    output:
        directory(TASKS_DIR),
    params:
        speciality=config["speciality"]["tasks"],
        versatility=config["versatility"]["local_tasks"],
        code=code_hash("cofitune.stages.data:make_tasks"),
    log:
        log_file("make_tasks"),
    benchmark:
        benchmark_file("make_tasks")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/make_tasks.py"
