"""Listening aids for the morning page: how far each LoRA clip is from its base clip (the
"no audible effect" alarm) and how close each checkpoint's clips are to the training songs
(the ranking and the memorisation flag). The audio work runs in a child process
(``child.py``); the daemon only calls ``runner.run_analysis`` and reads ``schema`` types."""
