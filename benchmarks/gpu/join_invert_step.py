#!/usr/bin/env python3
"""Joins bench_invert_step_gpu's JSON with projector_step_torch.py's into one markdown table
with the speed-up of ganinv over the PyTorch projector step (same config, objective, batch).

    join_invert_step.py GANINV.json TORCH.json [--out JOINED.json]
"""
import argparse
import json


def rows_of(path):
    with open(path) as f:
        d = json.load(f)
    return d["rows"] if isinstance(d, dict) and "rows" in d else d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ganinv")
    ap.add_argument("torch")
    ap.add_argument("--out")
    a = ap.parse_args()
    ours = rows_of(a.ganinv)
    theirs = {(r["config"], r["objective"], r["batch"]): r for r in rows_of(a.torch)}
    names = {"w_noise": "W + noise (official projector)", "wplus": "W+, const noise"}
    print("| config | objective | batch | ganinv ms/step | PyTorch ms/step | speed-up |")
    print("|---|---|---|---|---|---|")
    joined = []
    for r in ours:
        r = r.get("json", r)
        key = (r["config"], r["objective"], r["batch"])
        t = theirs.get(key)
        speed = t["ms_per_step"] / r["ms_per_step"] if t else None
        print(f"| {r['config']} | {names.get(r['objective'], r['objective'])} | {r['batch']} | {r['ms_per_step']:.3f} | "
              f"{t['ms_per_step']:.3f} | {speed:.2f}x |" if t else
              f"| {r['config']} | {r['objective']} | {r['batch']} | {r['ms_per_step']:.3f} | - | - |")
        joined.append(dict(r, torch_ms_per_step=t["ms_per_step"] if t else None, speedup=speed))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(joined, f, indent=1)


if __name__ == "__main__":
    main()
