#!/usr/bin/env python3
"""Joins bench_device_step_gpu's JSON with the official projector's timings
(official_projector_timing.py, one JSON line per resolution) and the measured GEMM rates
(gemm_peak.py): ms/step, ms/image-step, speed-up over the official project() at batch 1
(per image-step at batch 8), and the share of the physical floor (FLOPs per step / measured
dense GEMM rate of that precision, over the measured step time). Markdown table on stdout.
  join_device_step.py GANINV.json --official a.json [b.json ...] --peak gemm_peak.json [--out joined.json]"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ganinv")
    ap.add_argument("--official", nargs="*", default=[])
    ap.add_argument("--peak")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = json.load(open(a.ganinv))["rows"]
    official = {}
    for p in a.official:
        try:
            for line in open(p):
                line = line.strip()
                if line.startswith("{"):
                    d = json.loads(line)
                    official[int(d["res"])] = d
        except OSError:
            pass
    peak = json.load(open(a.peak)) if a.peak else {}
    print("| resolution | objective | precision | batch | ms/step | ms/image-step | official ms/step | speed-up "
          "(per image-step) | floor ms | share of floor | launch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        res = int(r["resolution"])
        off = official.get(res) if r["objective"] == "official" else None
        off_ms = off["ms_per_step"] if off else None
        speed = off_ms / r["ms_per_image_step"] if off_ms else None
        rate = peak.get(r["precision"])
        floor = r["gflop_per_step"] / rate if rate else None  # GFLOP / (TFLOP/s) = ms
        r["official_ms_per_step"] = off_ms
        r["speedup_vs_official"] = speed
        r["floor_ms"] = floor
        r["share_of_floor"] = floor / r["ms_per_step"] if floor else None
        f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"
        print(f"| {res} | {r['objective']} | {r['precision']} | {r['batch']} | {f(r['ms_per_step'])} | "
              f"{f(r['ms_per_image_step'])} | {f(off_ms)} | {f(speed, 1) + 'x' if speed else '-'} | {f(floor, 3)} | "
              f"{f(r['share_of_floor'] * 100 if floor else None, 1) + '%' if floor else '-'} | {r['launch_mode']} |")
    if a.out:
        json.dump({"rows": rows, "official": official, "gemm_peak": peak}, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
