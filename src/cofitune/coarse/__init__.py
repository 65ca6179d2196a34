"""The coarse level: the tree search over layer ranges and module sets (`search`) and how a level's
winner is decided over seeds and items (`decision`). May import the packages below it (`infra` to
`methods`).
"""
