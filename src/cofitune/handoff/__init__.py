"""What a run hands on: the final model's card (`modelcard`) and its region exported for other trainers
(`exports`: axolotl, PEFT, and torchtune, which is no longer maintained). May import `infra`,
`models` and `evidence`.
"""
