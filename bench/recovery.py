#!/usr/bin/python3
"""Recovery time: how long a job stands still after its worker dies. A real muppetd and two
muppet-workers on 127.0.0.1 train a checkpointed job; the worker training it is killed with
kill -9, and the times come from the job's own events (the coordinator's clock, this machine's):
the restart (back to QUEUED), the new attempt's start from its checkpoint (training again), and
the first policy epoch it reports. Two cases, `--repeats` times each:

- lost: the dead worker stays dead; the coordinator notices when its lease runs out, and the
  job moves to the other worker;
- restarted: the worker comes back under the same name at once (a restarted pod), which
  replaces its old registration; the job restarts on it at once.

Prints one JSON line per run, then one summary line per case (medians).

  bazel build //server:muppetd //worker:muppet-worker //client:muppetctl && bench/recovery.py
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MUPPET_BIN", os.path.join(ROOT, "bazel-bin"))  # Or a copy of its binaries.
MUPPETD = os.path.join(BIN, "server", "muppetd")
WORKER = os.path.join(BIN, "worker", "muppet-worker")
MUPPETCTL = os.path.join(BIN, "client", "muppetctl")
JOB = ["--model=lenet5", "--epochs=40", "--batch-size=64", "--lr=0.05", "--train-limit=6400",
       "--test-limit=500", "--policy=fixed:8", "--checkpoint-interval-epochs=1"]


def ctl(server, *args):
    return subprocess.run([MUPPETCTL, "--insecure", f"--server={server}", *args],
                          capture_output=True, text=True, check=True).stdout


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError("timed out")


def seconds(timestamp):
    """Unix seconds of a protobuf JSON timestamp ("2026-12-02T05:22:44.163027Z")."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    return (datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp() +
            float(f"0.{fraction or 0}"))


class Cluster:
    def __init__(self, tmp, lease, heartbeat):
        self.tmp = tmp
        ports = os.path.join(tmp, "ports")
        self.muppetd = subprocess.Popen(
            [MUPPETD, "--insecure", "--listen=127.0.0.1:0", "--metrics-listen=", f"--db={tmp}/m.db",
             f"--port-file={ports}", f"--lease={lease}", f"--heartbeat-interval={heartbeat}"],
            stderr=open(os.path.join(tmp, "muppetd.log"), "w"))
        wait_for(lambda: os.path.exists(ports) and os.path.getsize(ports) > 0, 20)
        self.server = f"127.0.0.1:{open(ports).read().split()[0]}"
        self.workers = {name: self.start_worker(name) for name in ("w1", "w2")}
        wait_for(lambda: all(n in ctl(self.server, "workers") for n in self.workers), 20)

    def start_worker(self, name):
        return subprocess.Popen(
            [WORKER, "--insecure", f"--server={self.server}", f"--name={name}", "--threads=1",
             f"--checkpoint-dir={self.tmp}/checkpoints"],
            stderr=open(os.path.join(self.tmp, f"{name}.log"), "a"))

    def stop(self):
        for p in [*self.workers.values(), self.muppetd]:
            p.send_signal(signal.SIGTERM)
            p.wait()


def job(server, job_id):
    return json.loads(ctl(server, "--output=json", "get", job_id))


def history(server, job_id):
    """The job's events up to the first policy epoch reported after a restarted attempt began."""
    watch = subprocess.Popen([MUPPETCTL, "--insecure", f"--server={server}", "--output=json",
                              "watch", job_id],
                             stdout=subprocess.PIPE, text=True)
    events = []
    try:
        for line in watch.stdout:
            events.append(json.loads(line))
            started = [i for i, e in enumerate(events) if "attempt_start" in e]
            if started and any("epoch" in e for e in events[started[0]:]):
                break
    finally:
        watch.kill()
        watch.wait()
    return events


def run(case, args):
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(tmp, args.lease, args.heartbeat)
        try:
            job_id = ctl(cluster.server, "submit", *JOB).split()[1]
            wait_for(lambda: job(cluster.server, job_id)["progress"]
                     .get("last_checkpoint", {}).get("epoch", 0) >= 2, 120)
            names = {w["worker_id"]: w["worker_name"] for w in json.loads(
                ctl(cluster.server, "--output=json", "workers"))["workers"]}
            victim = names[job(cluster.server, job_id)["worker_ids"][0]]
            cluster.workers[victim].send_signal(signal.SIGKILL)
            killed = time.time()
            cluster.workers[victim].wait()
            if case == "restarted":
                cluster.workers[victim] = cluster.start_worker(victim)
            events = history(cluster.server, job_id)
            requeued = next(e for e in events if e.get("state_change", {}).get("to") ==
                            "JOB_STATE_QUEUED" and "restart" in e["state_change"].get("reason", ""))
            start = next(i for i, e in enumerate(events) if "attempt_start" in e)
            first = next(e for e in events[start:] if "epoch" in e)
            resumed = events[start]["attempt_start"].get("resumed_from", {})
            return {"case": case, "lease": args.lease, "heartbeat_interval": args.heartbeat,
                    "death_to_requeued_seconds": seconds(requeued["time"]) - killed,
                    "death_to_training_seconds": seconds(events[start]["time"]) - killed,
                    "death_to_first_report_seconds": seconds(first["time"]) - killed,
                    "resumed_from_epoch": resumed.get("epoch", 0)}
        finally:
            cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lease", default="15s", help="muppetd --lease (its default)")
    parser.add_argument("--heartbeat", default="2s", help="muppetd --heartbeat-interval")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for case in ("lost", "restarted"):
        runs = [run(case, args) for _ in range(args.repeats)]
        for r in runs:
            print(json.dumps(r), flush=True)
        print(json.dumps({"case": case, "lease": args.lease, "runs": len(runs), **{
            f"median_{k}": statistics.median(r[k] for r in runs)
            for k in ("death_to_requeued_seconds", "death_to_training_seconds",
                      "death_to_first_report_seconds")}}), flush=True)


if __name__ == "__main__":
    main()
