#!/usr/bin/python3
"""Data-parallel scaling on one machine: a model's training epoch on 1 rank x T threads against
N ranks x T/N threads (muppet-train --nproc), at each given precision, interleaved `--repeats`
times so that machine noise hits both alike. Prints one JSON line per measured epoch, then one
summary line per (model, precision) with the best epoch times, the throughput ratio
(data parallel / one process; the goal is at least 0.9) and the share of gradient communication
hidden behind backward (1 - exposed / busy, from rank 0's report).

  bazel build -c opt //worker:muppet-train && bench/scaling.py --models=resnet20
"""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUPPET = os.path.join(ROOT, "bazel-bin", "worker", "muppet-train")


def epoch(model, policy, ranks, args):
    """The second epoch of a two-epoch run (the first warms caches and plans)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([MUPPET, f"--model={model}", "--dataset=synthetic",
                        f"--synthetic={args.synthetic}", "--epochs=2",
                        f"--batch-size={args.batch_size}", f"--threads={args.threads}",
                        f"--nproc={ranks}", f"--policy={policy}", "--lr=0.05",
                        f"--report={report.name}"], check=True, stdout=subprocess.DEVNULL)
        e = json.load(open(report.name))["epochs"][1]
    busy = e["communication_seconds"] or 0
    exposed = e["communication_exposed_seconds"] or 0
    return {"model": model, "policy": policy, "ranks": ranks,
            "threads_per_rank": args.threads // ranks, "images": e["samples"],
            "seconds": e["seconds"], "images_per_second": e["images_per_second"],
            "communication_bytes": e["communication_bytes"], "communication_seconds": busy,
            "exposed_seconds": exposed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet20")
    parser.add_argument("--policies", default="fp32,fixed:8")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--synthetic", default="3x32x32,10,5120,512")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for model in args.models.split(","):
        for policy in args.policies.split(","):
            runs = {1: [], args.ranks: []}
            for _ in range(args.repeats):
                for ranks in runs:
                    e = epoch(model, policy, ranks, args)
                    print(json.dumps(e), flush=True)
                    runs[ranks].append(e)
            one = min(runs[1], key=lambda e: e["seconds"])
            many = min(runs[args.ranks], key=lambda e: e["seconds"])
            hidden = (1 - many["exposed_seconds"] / many["communication_seconds"]
                      if many["communication_seconds"] > 0 else None)
            print(json.dumps({"summary": True, "model": model, "policy": policy,
                              "ranks": args.ranks, "threads": args.threads,
                              "one_rank_seconds": one["seconds"],
                              "data_parallel_seconds": many["seconds"],
                              "throughput_ratio": one["seconds"] / many["seconds"],
                              "communication_bytes_per_epoch": many["communication_bytes"],
                              "communication_seconds": many["communication_seconds"],
                              "hidden_share": hidden}), flush=True)


if __name__ == "__main__":
    main()
