#!/usr/bin/python3
"""The time model of gradient allreduce at scale, on paper (docs/SCALING.md): bytes each rank
sends per training step and the ring allreduce time, for float32 gradients and for MuPPET's
fixed-point allreduce, at 8, 64 and 512 GPUs over NVLink and 100 and 400 Gb/s networks.

A ring allreduce of S bytes over N ranks sends 2 (N-1)/N S bytes per rank in 2 (N-1) steps:
    T = 2 (N-1) alpha + 2 (N-1)/N S / B
with alpha the per-step latency and B the per-rank link bandwidth; the gradient goes in buckets,
each paying the latency term. The fixed-point allreduce first agrees on each bucket's exponents
(an allreduce-max of 2 floats per tensor: latency-bound, modelled as a tree, 2 log2(N) alpha)
and sends codes as int16 while N 2^(b-1) <= 2^15, else int32 (worker/comm/
fixed_point_allreduce.h). Quantisation is left out (on a GPU it streams each gradient element
once through memory). Every input is printed with the result; none is measured here.

  bench/scaling_model.py            # JSON lines, then a Markdown table
"""
import json
import math

# Parameters of muppet's models (muppet-train prints them; ImageNet layouts at 224x224).
MODELS = {"resnet20": 272474, "resnet18": 11689512, "googlenet": 7005832, "alexnet": 15014696}
# Per-rank link bandwidth (bytes/s) and per-step latency (s). NVLink: H100/H200 NVLink 4 moves
# 450 GB/s each way per GPU; NCCL's ring reaches about 80% of it. Networks: one NIC per GPU.
LINKS = {
    "nvlink": {"bandwidth": 0.8 * 450e9, "alpha": 3e-6},
    "400gbps": {"bandwidth": 0.9 * 400e9 / 8, "alpha": 10e-6},
    "100gbps": {"bandwidth": 0.9 * 100e9 / 8, "alpha": 10e-6},
}
RANKS = [8, 64, 512]
# Buckets of 25 MiB, as PyTorch DDP's default: at these latencies muppet's CPU default (256 KiB,
# for resnet20 on one machine) would pay thousands of ring latencies per step.
BUCKET_BYTES = 25 << 20


def wire_bytes(bits, ranks):
    if bits == 32:
        return 4
    return 2 if ranks << (bits - 1) <= 1 << 15 else 4


def allreduce_seconds(payload, buckets, ranks, link):
    return (buckets * 2 * (ranks - 1) * link["alpha"] +
            2 * (ranks - 1) / ranks * payload / link["bandwidth"])


def main():
    rows = []
    for model, params in MODELS.items():
        buckets = max(1, -(-params * 4 // BUCKET_BYTES))
        for ranks in RANKS:
            for link_name, link in LINKS.items():
                row = {"model": model, "parameters": params, "ranks": ranks, "link": link_name,
                       "link_bandwidth_gbps": link["bandwidth"] * 8 / 1e9,
                       "alpha_us": link["alpha"] * 1e6, "buckets": buckets}
                for bits in (32, 8, 16):
                    payload = params * wire_bytes(bits, ranks)
                    seconds = allreduce_seconds(payload, buckets, ranks, link)
                    if bits != 32:  # One exponent allreduce-max per bucket, as a tree.
                        seconds += buckets * 2 * math.log2(ranks) * link["alpha"]
                    name = "float32" if bits == 32 else f"fixed{bits}"
                    row[f"{name}_bytes_per_step"] = 2 * (ranks - 1) / ranks * payload
                    row[f"{name}_ms"] = seconds * 1e3
                row["fixed8_speedup"] = row["float32_ms"] / row["fixed8_ms"]
                rows.append(row)
                print(json.dumps(row))
    print("\n| model | GPUs | link | float32 MB/step | float32 ms | fixed8 MB/step | fixed8 ms | "
          "fixed16 ms | float / fixed8 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['ranks']} | {r['link']} | "
              f"{r['float32_bytes_per_step'] / 1e6:.1f} | {r['float32_ms']:.2f} | "
              f"{r['fixed8_bytes_per_step'] / 1e6:.1f} | {r['fixed8_ms']:.2f} | "
              f"{r['fixed16_ms']:.2f} | {r['fixed8_speedup']:.2f}x |")


if __name__ == "__main__":
    main()
