# Copied verbatim (apart from this header) from ../shared/baselines/naive_sanitize.py, the
# reference baseline supplied with the acewatchd mission, so bench/sanitize_bench.py can run in
# CI, which has no ../shared. Not acewatchd code: it is what acewatchd is measured against.
"""Reference baseline for sanitize benchmarks: the manual approach acewatchd replaces.

For every .pt file in a folder: load it whole, replace NaN with 0 in every tensor that has any,
and write the file back (every file is rewritten, clean or not, in place, not atomically).

Usage: python naive_sanitize.py TENSOR_DIR
"""
import glob
import os
import sys

import torch


def main(folder: str) -> None:
    repaired = 0
    for path in sorted(glob.glob(os.path.join(folder, "*.pt"))):
        data = torch.load(path, map_location="cpu", weights_only=True)
        for key, value in data.items():
            if isinstance(value, torch.Tensor) and torch.isnan(value).any():
                data[key] = torch.nan_to_num(value, nan=0.0)
                repaired += 1
        torch.save(data, path)
    print(f"repaired tensors: {repaired}")


if __name__ == "__main__":
    main(sys.argv[1])
