"""Figures of docs/faults.md (data side): what refusing hostile pickles costs, how fast the safe pickle
loader reads plain motion pickles, and what the evaluator's message checks cost on a 60 s bag.

    .venv/bin/python bench/fault_figures.py [--repeats 5]

The bags and pickles are the ones the fault tests build (test/faults/test_faults_data.py,
test/motion/test_bad_files.py). Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# bench/motion_server.py would shadow the motion_server package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _module(path: Path):
    sys.path.insert(0, str(path.parent))  # the test's own helpers (motion_helpers)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pickle_bombs() -> dict:
    from motion_server.safe_pickle import UnsafePickleError, safe_load

    tests = _module(ROOT / "test" / "motion" / "test_bad_files.py")
    out = {}
    for name, payload in [("bytearray", tests._bytearray_bomb(2**30)), ("ndarray", tests._ndarray_bomb()),
                          ("reconstruct", tests._reconstruct_bomb()), ("list_amplification", tests._amplified_list())]:
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            safe_load(payload)
            refused = False
        except UnsafePickleError:
            refused = True
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = {"bytes": len(payload), "refused": refused, "ms": round(seconds * 1e3, 2),
                     "peak_mib": round(peak / 2**20, 1)}
        print(f"pickle bomb {name:<20} {len(payload):>4} bytes: refused={refused} in {seconds * 1e3:.1f} ms, "
              f"peak traced {peak / 2**20:.1f} MiB")
    return out


def plain_pickles(repeats: int) -> dict:
    from motion_server.safe_pickle import safe_load

    rng = np.random.default_rng(0)
    n = 36000  # 20 minutes at 30 fps
    clip = {"fps": 30.0, "root_pos": rng.normal(size=(n, 3)), "root_rot": rng.normal(size=(n, 4)),
            "dof_pos": rng.normal(size=(n, 29)).astype(np.float32), "names": [f"j{i}" for i in range(29)]}
    lists = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in clip.items()}
    out = {}
    for label, obj in (("arrays", clip), ("lists", lists)):
        for protocol in (2, 4):
            data = pickle.dumps(obj, protocol=protocol)
            safe, plain = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                safe_load(data)
                safe.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pickle.loads(data)
                plain.append(time.perf_counter() - t0)
            key = f"{label}_protocol{protocol}"
            out[key] = {"mb": round(len(data) / 1e6, 1), "safe_load_ms": round(1e3 * float(np.median(safe)), 1),
                        "pickle_loads_ms": round(1e3 * float(np.median(plain)), 1)}
            print(f"plain pickle {key:<17} {len(data) / 1e6:5.1f} MB: safe_load {out[key]['safe_load_ms']} ms, "
                  f"pickle.loads {out[key]['pickle_loads_ms']} ms (medians of {repeats})")
    return out


def evaluation(repeats: int) -> dict:
    from g1_bringup.evaluation import evaluate_bag

    faults = _module(ROOT / "test" / "faults" / "test_faults_data.py")
    faults.N_TICKS = 3000  # 60 s
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bags = {"clean": faults.write_bag(tmp / "clean"),
                "with_bad_states": faults.write_bag(tmp / "bad", extra=faults._bad_states())}
        for label, bag in bags.items():
            times = []
            for i in range(repeats):
                t0 = time.perf_counter()
                evaluate_bag(bag, tmp / f"report_{label}_{i}", plots=False)
                times.append(time.perf_counter() - t0)
            out[label] = {"median_s": round(float(np.median(times)), 3), "min_s": round(min(times), 3)}
            print(f"g1 eval, 60 s synthetic lockstep bag ({label}), no plots: median {out[label]['median_s']} s, "
                  f"min {out[label]['min_s']} s of {repeats}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    result = {"pickle_bombs": pickle_bombs(), "plain_pickles": plain_pickles(args.repeats),
              "evaluation": evaluation(args.repeats)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
