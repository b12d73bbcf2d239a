#!/usr/bin/python3
"""FP32 training speed of muppet against PyTorch, side by side in one run.

For each model, trains one epoch of Fashion-MNIST with muppet-train, with PyTorch (default
NCHW layout), and with PyTorch in channels_last, interleaved `--repeats` times so that machine
noise hits all three alike, with the same batch size, optimiser and thread count. Prints one JSON
line per measured epoch, then one summary line per model with the median epoch times and the
ratio muppet / PyTorch-best (the goal is <= 1.0).

  bazel build //worker:muppet-train && bench/fp32_vs_pytorch.py --models=lenet5,resnet20
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUPPET = os.path.join(ROOT, "bazel-bin", "worker", "muppet-train")
PEER = os.path.join(ROOT, "bench", "torch_peer.py")


def muppet_epoch(model, args):
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([MUPPET, f"--model={model}", "--epochs=1", f"--batch-size={args.batch_size}",
                        f"--threads={args.threads}", f"--train-limit={args.train_limit}",
                        "--test-limit=1000", f"--report={report.name}"],
                       check=True, stdout=subprocess.DEVNULL)
        epoch = json.load(open(report.name))["epochs"][0]
    return {"framework": "muppet", "model": model, "batch_size": args.batch_size,
            "threads": args.threads, "images": epoch["samples"], "seconds": epoch["seconds"],
            "images_per_second": epoch["images_per_second"]}


def torch_epoch(model, args, channels_last):
    command = ["/usr/bin/python3", PEER, f"--model={model}", f"--batch-size={args.batch_size}",
               f"--threads={args.threads}", f"--train-limit={args.train_limit}"]
    if channels_last:
        command.append("--channels-last")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=0, help="images per epoch (0: all)")
    args = parser.parse_args()
    if not os.path.exists(MUPPET):
        sys.exit(f"{MUPPET} not found: run `bazel build //worker:muppet-train` first")

    for model in args.models.split(","):
        times = {"muppet": [], "pytorch": [], "pytorch-channels-last": []}
        for _ in range(args.repeats):
            for name, run in (("muppet", lambda: muppet_epoch(model, args)),
                              ("pytorch", lambda: torch_epoch(model, args, False)),
                              ("pytorch-channels-last", lambda: torch_epoch(model, args, True))):
                result = run()
                print(json.dumps(result), flush=True)
                times[name].append(result["seconds"])
        median = {name: statistics.median(t) for name, t in times.items()}
        best_peer = min(("pytorch", "pytorch-channels-last"), key=median.get)
        print(json.dumps({"summary": "fp32_epoch", "model": model, "batch_size": args.batch_size,
                          "threads": args.threads, "repeats": args.repeats,
                          "median_seconds": median, "best_pytorch": best_peer,
                          "ratio_muppet_to_best_pytorch": median["muppet"] / median[best_peer]}),
              flush=True)


if __name__ == "__main__":
    main()
