"""Training: the explicit loop with accumulation, clipping, checkpoints and resume (`loop`), its
loss (`loss`), the optimizer with per-entry step scales (`optim`), MoFO's momentum filter (`mofo`)
and live curves (`tracking`). May import `infra`, `models` and `data`.
"""
