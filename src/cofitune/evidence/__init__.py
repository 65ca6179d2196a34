"""What a run shows: the Parquet result tables and the summary (`tables`), the claims as one family of
tests (`claims`), their Markdown (`markdown`), plots (`plots`) and HTML pages (`pages`). May import
`infra`, `methods` and `evaluation`.
"""
