"""Training: the explicit loop with accumulation, clipping, checkpoints and resume (`loop`), the
optimizer with per-entry step scales (`optim`) and MoFO's momentum filter (`mofo`). May import
`infra`, `models` and `data`.
"""
