"""Evaluation: lm-evaluation-harness on an in-memory model (`harness`), the task files we write
(`tasks`) and the names lm-eval knows (`task_index`), the select/confirm item splits (`splits`),
per-item scores and their paired bootstrap (`scores`), and the KL forgetting signal
(`forgetting`). May import `infra` and `data`.
"""
