"""The base model and its parts: loading and saving any supported family (`modeling`), its decoder
layers, module roles and layer ranges (`regions`), and FSDP2 sharding with row-aligned local blocks
(`sharding`). May import `infra`.
"""
