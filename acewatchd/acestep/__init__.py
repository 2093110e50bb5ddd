"""Everything that talks to ACE-Step (Gradio client, contract snapshot, progress parsing)."""
