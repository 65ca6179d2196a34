"""Workflow stages: file paths in, file paths out; one module per rule file of the workflow.

The only layer between the entry points (`workflow/scripts/`, `cofitune.cli`, and the
`accelerate launch`-ed `python -m cofitune.stages.train | importance`) and the pure core. Every
write goes through `cofitune.infra.io` (formats) or `cofitune.infra.records` (the JSON records).
"""
