"""acewatchd's ACE-Step SIMULATOR: a test double of ACE-Step's Gradio app (not ACE-Step)."""
