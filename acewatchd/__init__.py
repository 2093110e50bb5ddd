"""acewatchd: drop folders in, ACE-Step LoRA samples out."""

__version__ = "0.1.0"
