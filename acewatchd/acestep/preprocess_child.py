"""Runs inside ACE-Step's own interpreter (cwd = ACE-Step root): one preprocess_audio_files call.

Deliberately standalone (standard library + ACE-Step only): acewatchd is not installed in
ACE-Step's venv. acewatchd/acestep/preprocess.py starts it as
``<acestep python> preprocess_child.py JOB.json`` and reads its output line by line:
``ACEWATCHD-PROGRESS {json}`` per progress callback, ``ACEWATCHD-RESULT {json}`` at the end;
everything else is ACE-Step's own logging, passed through for the log and failure reasons.
"""

import json
import logging
import sys


def _emit(kind, payload):
    print(f"ACEWATCHD-{kind} {json.dumps(payload, ensure_ascii=False, default=str)}", flush=True)


def _progress(*args, **kwargs):
    _emit("PROGRESS", {"args": [str(a) for a in args], "kwargs": {k: str(v) for k, v in
                                                                 kwargs.items()}})


def main(job_path):
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(levelname)s %(name)s: %(message)s")
    from acestep.training_v2.preprocess import preprocess_audio_files

    result = preprocess_audio_files(
        job["audio_dir"], job["output_dir"], job["checkpoint_dir"], variant=job["variant"],
        max_duration=job["max_duration"], dataset_json=job["dataset_json"],
        device=job["device"], precision=job["precision"], progress_callback=_progress)
    _emit("RESULT", result if isinstance(result, dict) else {"value": result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
