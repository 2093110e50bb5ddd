"""Is ACE-Step's trainer going to train in fp16 on MPS (NaN gradients)?

The trainer behind the UI's ``/training_wrapper`` is ``acestep/training/trainer.py``
(``LoRATrainer``) in every known version, S, V1 and V2 (CONTRACT §9c). Read with ``ast``, never
imported (it needs torch).

- Before 7dadd02 (2026-02-09, so S): ``_select_compute_dtype`` returns ``torch.float16`` and
  ``_select_fabric_precision`` ``"16-mixed"`` for mps, and the LoRA weights train in fp16: a
  branch whose test mentions "mps" and returns fp16, or a dict mapping "mps" to fp16, counts as
  unpatched (CONTRACT §6).
- From 7dadd02 (V1, V2): the trainer calls ``_ensure_trainable_params_fp32`` (trainable weights
  stay fp32; fp16 is autocast only) and ``_count_nonfinite_grads`` (steps with non-finite
  gradients are skipped). The two helpers above still say fp16 there, as intended, so with the
  guard present they are not judged at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

from acewatchd.doctor.check import Check

TRAINER = Path("acestep/training/trainer.py")
FUNCS = {"_select_compute_dtype": ("float16", "half"), "_select_fabric_precision": ("16",)}
FP32_GUARD = "_ensure_trainable_params_fp32"
GRAD_GUARD = "_count_nonfinite_grads"
FIX = ("in {path}: make _select_compute_dtype return torch.float32 and "
       "_select_fabric_precision return \"32-true\" for \"mps\" (fp16 on MPS gives NaN "
       "gradients), or update ACE-Step (from 7dadd02, 2026-02-09, its trainer keeps LoRA "
       "weights in fp32 on MPS)")


def _is_fp16(node: ast.AST | None, marks: tuple[str, ...]) -> bool:
    if node is None:
        return False
    src = ast.unparse(node)
    if marks == ("16",):
        return "16-mixed" in src or "16-true" in src or src.strip("'\"") == "16"
    return any(m in src for m in marks) and "bfloat16" not in src


def _mps_is_fp16(func: ast.FunctionDef, marks: tuple[str, ...]) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.If) and "mps" in ast.unparse(node.test) and any(
                isinstance(n, ast.Return) and _is_fp16(n.value, marks)
                for stmt in node.body for n in ast.walk(stmt)):
            return True
        if isinstance(node, ast.IfExp) and "mps" in ast.unparse(node.test) \
                and _is_fp16(node.body, marks):
            return True
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "mps" \
                        and _is_fp16(value, marks):
                    return True
    return False


def unpatched_functions(source: str) -> tuple[list[str], list[str]]:
    """(functions returning fp16 for mps, functions not found)."""
    tree = ast.parse(source)
    found = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    bad = [name for name, marks in FUNCS.items()
           if name in found and _mps_is_fp16(found[name], marks)]
    return bad, [name for name in FUNCS if name not in found]


def called_functions(source: str) -> set[str]:
    """Names of the plain or attribute calls in ``source`` (``f(...)``, ``mod.f(...)``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def fp32_guard(source: str) -> tuple[bool, bool]:
    """(trainable weights are forced to fp32, non-finite gradients are counted): the trainer
    calls ``_ensure_trainable_params_fp32`` / ``_count_nonfinite_grads`` (or a variant)."""
    calls = called_functions(source)
    return FP32_GUARD in calls, any(c.startswith(GRAD_GUARD) for c in calls)


def check_mps_precision(root: Path) -> Check:
    path = root / TRAINER
    name = "MPS training precision"
    try:
        source = path.read_text(encoding="utf-8")
        bad, missing = unpatched_functions(source)
        guarded, grads = fp32_guard(source)
    except FileNotFoundError:
        return Check(name, False, f"{path} not found (not ACE-Step 1.5?)",
                     "point [acestep] root at an ACE-Step-1.5 checkout")
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        return Check(name, False, f"cannot read {path}: {exc}", "check the file")
    if guarded:
        skip = (f"; steps with non-finite gradients are skipped ({GRAD_GUARD})" if grads
                else "")
        note = (f" (note: {', '.join(bad)} still pick fp16 for mps, as upstream intends:"
                " that is the autocast precision only)" if bad else "")
        return Check(name, True, f"trainable LoRA weights stay fp32 on mps ({FP32_GUARD}), "
                     f"fp16 is autocast only{skip}{note}")
    if bad:
        return Check(name, False, f"{', '.join(bad)} use fp16 on mps: NaN gradients",
                     FIX.format(path=path))
    if len(missing) == len(FUNCS):
        return Check(name, True, f"{path}: precision helpers not found (newer trainer);"
                     " nothing to patch")
    return Check(name, True, "fp32 / \"32-true\" on mps")
