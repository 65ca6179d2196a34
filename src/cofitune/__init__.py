"""CoFiTune: coarse-to-fine fine-tuning of an aligned LLM for a speciality without losing versatility."""

__version__ = "0.1.0"
