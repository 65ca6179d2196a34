"""Every model a run can train or evaluate: what each method does (`recipes`), the candidates built
from the config and their ids (`candidates`), and the baselines' parameter choices (`baselines`,
`spectrum`). Nothing else branches on a method. May import `infra`, `models`, `data` and `training`.
"""
