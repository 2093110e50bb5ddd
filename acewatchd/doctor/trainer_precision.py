"""Is ACE-Step's trainer going to train in fp16 on MPS (NaN gradients)?

ACE-Step f30aee4 ``acestep/training/trainer.py`` picks ``torch.float16`` in
``_select_compute_dtype`` and ``"16-mixed"`` in ``_select_fabric_precision`` for mps
(CONTRACT §6). Read with ``ast`` (never imported: it needs torch): a branch whose test
mentions "mps" and returns fp16, or a dict mapping "mps" to fp16, counts as unpatched.
"""

from __future__ import annotations

import ast
from pathlib import Path

from acewatchd.doctor.check import Check

TRAINER = Path("acestep/training/trainer.py")
FUNCS = {"_select_compute_dtype": ("float16", "half"), "_select_fabric_precision": ("16",)}
FIX = ("in {path}: make _select_compute_dtype return torch.float32 and "
       "_select_fabric_precision return \"32-true\" for \"mps\" (fp16 on MPS gives NaN "
       "gradients)")


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


def check_mps_precision(root: Path) -> Check:
    path = root / TRAINER
    name = "MPS training precision"
    try:
        bad, missing = unpatched_functions(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Check(name, False, f"{path} not found (not ACE-Step 1.5?)",
                     "point [acestep] root at an ACE-Step-1.5 checkout")
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        return Check(name, False, f"cannot read {path}: {exc}", "check the file")
    if bad:
        return Check(name, False, f"{', '.join(bad)} use fp16 on mps: NaN gradients",
                     FIX.format(path=path))
    if len(missing) == len(FUNCS):
        return Check(name, True, f"{path}: precision helpers not found (newer trainer);"
                     " nothing to patch")
    return Check(name, True, "fp32 / \"32-true\" on mps")
