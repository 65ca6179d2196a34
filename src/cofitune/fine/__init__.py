"""The fine level: the versatility importance of heads and neurons from gates on each layer (`importance`,
after DAS),
and the soft-mask that scales each unit's update by 1 - importance, with its controls (`masking`).
May import `infra` and `models`.
"""
