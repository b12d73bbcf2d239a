#!/usr/bin/python3
"""Time to accuracy: MuPPET against PyTorch's bf16 autocast, the same model, data and schedule.

Trains the model for --epochs with PyTorch under bf16 autocast (bench/torch_peer.py) and with
muppet-train's MuPPET policy, one after the other, with the same batch, optimiser, learning-rate
schedule, augmentation, seed and thread count, testing on the whole test set after every epoch.
The target is PyTorch's final test accuracy; MuPPET's time is its training time up to the first
epoch whose test accuracy reaches it. Prints one JSON line per run and one comparison line:
`speedup_to_peer_accuracy` = PyTorch's training time / MuPPET's time to the target (the goal is
at least 1.3), null when MuPPET never reaches the target. Times are training only (the test
passes are excluded in both), summed over epochs.

  bazel build -c opt //worker:muppet-train && bench/peer_run.py --epochs=10

MUPPET_FLAGS in the environment adds muppet-train flags to the MuPPET run (later flags win).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUPPET = os.path.join(ROOT, "bazel-bin", "worker", "muppet-train")
PEER = os.path.join(ROOT, "bench", "torch_peer.py")


def run_peer(args):
    command = ["/usr/bin/python3", PEER, f"--model={args.model}", f"--epochs={args.epochs}",
               f"--batch-size={args.batch_size}", f"--threads={args.threads}",
               f"--lr={args.lr}", "--lr-schedule=cosine", f"--weight-decay={args.weight_decay}",
               "--augment", "--test", "--bf16", f"--seed={args.seed}",
               f"--train-limit={args.train_limit}", f"--test-limit={args.test_limit}"]
    if args.peer_layout == "channels-last":
        command.append("--channels-last")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    epochs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(epochs) != args.epochs:
        sys.exit(f"{PEER}: expected {args.epochs} epoch lines, got {len(epochs)}")
    return epochs[0]["framework"], [(e["test_accuracy"], e["seconds"]) for e in epochs]


def run_muppet(args):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        command = [MUPPET, f"--model={args.model}", f"--epochs={args.epochs}",
                   f"--batch-size={args.batch_size}", f"--threads={args.threads}",
                   f"--lr={args.lr}", "--lr-schedule=cosine", f"--weight-decay={args.weight_decay}",
                   "--augment", f"--seed={args.seed}", "--policy=muppet", f"--report={report}",
                   f"--train-limit={args.train_limit}", f"--test-limit={args.test_limit}"]
        command += shlex.split(os.environ.get("MUPPET_FLAGS", ""))
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        result = json.load(open(report))
    epochs = [(e["test_accuracy"], e["seconds"]) for e in result["epochs"]]
    bits = [e["precision_bits"] for e in result["epochs"]]
    return epochs, bits, result["final"]["switch_epochs"]


def seconds_to(epochs, target):
    """Training seconds up to the first epoch whose test accuracy reaches target, or None."""
    total = 0.0
    for accuracy, seconds in epochs:
        total += seconds
        if accuracy >= target:
            return total
    return None


def parse_args(argv=None):
    """The command line; exits with a message naming the flag on a value out of range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=0, help="images (0: all; for a smoke run)")
    parser.add_argument("--test-limit", type=int, default=0, help="images (0: all; for a smoke run)")
    parser.add_argument("--peer-layout", choices=("nchw", "channels-last"),
                        default="channels-last", help="PyTorch's layout (the faster on CPUs)")
    args = parser.parse_args(argv)
    for flag, value, least in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                               ("--threads", args.threads, 1),
                               ("--train-limit", args.train_limit, 0),
                               ("--test-limit", args.test_limit, 0)):
        if value < least:
            parser.error(f"{flag} must be at least {least}, got {value}")
    return args


def main():
    args = parse_args()
    if not os.path.exists(MUPPET):
        sys.exit(f"{MUPPET} not found: run `bazel build -c opt //worker:muppet-train` first")

    framework, peer = run_peer(args)
    peer_seconds = sum(s for _, s in peer)
    print(json.dumps({"bench": "peer_run", "run": framework, "model": args.model,
                      "test_accuracy": [a for a, _ in peer], "train_seconds": peer_seconds}),
          flush=True)
    muppet, bits, switch_epochs = run_muppet(args)
    print(json.dumps({"bench": "peer_run", "run": "muppet", "model": args.model,
                      "test_accuracy": [a for a, _ in muppet], "precision_bits": bits,
                      "switch_epochs": switch_epochs,
                      "train_seconds": sum(s for _, s in muppet)}), flush=True)
    target = peer[-1][0]
    muppet_seconds = seconds_to(muppet, target)
    print(json.dumps({"bench": "peer_run", "comparison": "muppet_vs_" + framework,
                      "target_accuracy": target, "peer_seconds": peer_seconds,
                      "muppet_seconds_to_target": muppet_seconds,
                      "muppet_final_accuracy": muppet[-1][0],
                      "peer_seconds_to_muppet_final": seconds_to(peer, muppet[-1][0]),
                      "speedup_to_peer_accuracy":
                          peer_seconds / muppet_seconds if muppet_seconds else None}), flush=True)


if __name__ == "__main__":
    main()
