#!/usr/bin/env python3
"""The benchmark goals of docs/BENCHMARKS.md, computed from side-by-side result folders.

Usage: ratios.py RESULTS_DIR [RESULTS_DIR ...]
Each folder holds wrk.tsv and ttft.txt written by the bench-peers run_all.sh with
CANDIDATE=bench/candidate.sh. Prints one row per run and the median over runs of:
req/s at 32 connections, CPU per request against nginx's, added p50 latency at 1
connection against nginx's, added TTFT, and RSS.
"""
import re
import statistics
import sys


def parse(folder):
    rows = {}
    with open(f"{folder}/wrk.tsv") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            rec = {}
            for c in cols[1:]:
                for m in re.finditer(r"(\w+)=([-0-9.]+)", c):
                    rec[m.group(1)] = float(m.group(2))
            rows[cols[0]] = rec
    ttft = {}
    with open(f"{folder}/ttft.txt") as f:
        for line in f:
            cols = line.split("\t")
            m = re.search(r"ttft_p50_ms=([0-9.]+)", line)
            if m:
                ttft[cols[0]] = float(m.group(1))
    return rows, ttft


def cpu_us_per_req(rec):
    return rec["cpu_proxy"] / 100.0 / rec["rps"] * 1e6


def run_figures(folder):
    rows, ttft = parse(folder)
    out = {}
    for mode in ("json", "sse"):
        c, n = rows[f"candidate_{mode}_c32"], rows[f"nginx_{mode}_c32"]
        out[f"{mode}_rps_c32"] = c["rps"]
        out[f"{mode}_nginx_rps_c32"] = n["rps"]
        out[f"{mode}_cpu_us"] = cpu_us_per_req(c)
        out[f"{mode}_nginx_cpu_us"] = cpu_us_per_req(n)
        out[f"{mode}_cpu_ratio"] = cpu_us_per_req(c) / cpu_us_per_req(n)
        d = rows[f"direct_{mode}_c1"]["p50_us"]
        added_c = rows[f"candidate_{mode}_c1"]["p50_us"] - d
        added_n = rows[f"nginx_{mode}_c1"]["p50_us"] - d
        out[f"{mode}_added_p50_us"] = added_c
        out[f"{mode}_nginx_added_p50_us"] = added_n
        out[f"{mode}_added_ratio"] = added_c / added_n if added_n > 0 else float("nan")
        out[f"{mode}_rss_mib"] = rows[f"candidate_{mode}_c32"]["proxy_rss_mib"]
    out["added_ttft_ms"] = ttft["candidate"] - ttft["direct"]
    out["nginx_added_ttft_ms"] = ttft["nginx"] - ttft["direct"]
    out["portkey_added_ttft_ms"] = ttft["portkey"] - ttft["direct"]
    out["portkey_json_rps_c32"] = rows["portkey_json_c32"]["rps"]
    out["portkey_json_cpu_us"] = cpu_us_per_req(rows["portkey_json_c32"])
    return out


def main(folders):
    runs = [run_figures(f) for f in folders]
    keys = list(runs[0].keys())
    print("| figure | " + " | ".join(f.rstrip("/").split("/")[-1] for f in folders) + " | median |")
    print("|---|" + "--:|" * (len(folders) + 1))
    for k in keys:
        vals = [r[k] for r in runs]
        cells = " | ".join(f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}" for v in vals)
        med = statistics.median(vals)
        print(f"| {k} | {cells} | {med:.2f} |" if abs(med) < 100 else f"| {k} | {cells} | {med:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
