"""Chaos: a real muppetd and three muppet-worker processes on 127.0.0.1 train four jobs while a
bounded loop kills a random worker with kill -9 every second or two and starts it again under
the same name (as a Kubernetes pod restart does). Every job ends SUCCEEDED or FAILED with its
restarts used up; no acknowledged job or event is lost; no job trains two attempts at once; and
each job that succeeded ends exactly as its twin trained without interruption (same thread
count, deterministic routes). Then the coordinator itself is killed while a job resumes."""
import json
import os
import random
import signal
import sys
import tempfile
import time
import unittest

from tests import harness
from tests.harness import get_job, log_events, muppetctl, wait_for

# Four different small jobs (seeds), checkpointed every epoch, with integer routes so that a
# resumed run rounds as its twin does.
JOB_FLAGS = [
    "--model=lenet5", "--epochs=10", "--batch-size=64", "--lr=0.05", "--lr-schedule=constant",
    "--train-limit=6400", "--test-limit=500", "--policy-epoch-iterations=5", "--alpha=1",
    "--beta=0", "--resolution=2", "--patience=1", "--ladder=8,12,16",
    "--checkpoint-interval-epochs=1", "--fixed-point-route=integer", "--max-restarts=20",
]
SEEDS = [1, 2, 3, 4]
KILLS = 8


class ChaosTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        # A fixed port: the workers find the coordinator again after it restarts.
        self.coordinator = harness.Coordinator(self.tmp, "--lease=3s",
                                               "--heartbeat-interval=500ms",
                                               port=harness.free_port())
        self.checkpoints = os.path.join(self.tmp, "checkpoints")
        self.workers = {name: self.start_worker(name) for name in ("w1", "w2", "w3")}
        wait_for(lambda: all(n in muppetctl(self.coordinator.address, "workers").stdout
                             for n in self.workers), 20, "three workers to register")

    def tearDown(self):
        for w in self.workers.values():
            w.stop()
        self.coordinator.stop()

    def start_worker(self, name):
        # One thread each: a resumed job runs on the thread count its twin had.
        return harness.Worker(self.tmp, self.coordinator.address, name, "--threads=1",
                              f"--checkpoint-dir={self.checkpoints}")

    def submit(self, seed):
        result = muppetctl(self.coordinator.address, "submit", *JOB_FLAGS, f"--seed={seed}")
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()[1]

    def logs(self):
        return self.coordinator.log() + "".join(w.log() for w in self.workers.values())

    def events(self, job_id):
        return [json.loads(line) for line in muppetctl(
            self.coordinator.address, "--output=json", "watch", job_id).stdout.splitlines()]

    def checkpointed_running_job(self, job_ids):
        """A running job with a checkpoint from its current attempt's training, or None."""
        for job_id in job_ids:
            job = get_job(self.coordinator.address, job_id)
            if (job["state"] == "JOB_STATE_RUNNING" and job.get("worker_ids")
                    and job["progress"].get("last_checkpoint", {}).get("epoch", 0) >= 1):
                return job_id
        return None

    def worker_name_of(self, job_id):
        """The name of the worker the job runs on, or None when it is not placed now."""
        job = get_job(self.coordinator.address, job_id)
        if not job.get("worker_ids"):
            return None
        names = {w["worker_id"]: w["worker_name"] for w in json.loads(muppetctl(
            self.coordinator.address, "--output=json", "workers").stdout)["workers"]}
        return names.get(job["worker_ids"][0])

    def test_jobs_survive_workers_killed_at_random(self):
        twins = {seed: self.submit(seed) for seed in SEEDS}
        twin_jobs = {s: harness.wait_for_end(self.coordinator.address, j, 300)
                     for s, j in twins.items()}
        for job in twin_jobs.values():
            self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", self.logs())

        jobs = {seed: self.submit(seed) for seed in SEEDS}
        # The first kill waits for a running job with a checkpoint and hits its worker, so that
        # some job resumes however slow the machine is; the rest land at random.
        first = self.worker_name_of(wait_for(lambda: self.checkpointed_running_job(jobs.values()),
                                             240, "a running job with a checkpoint"))
        rng = random.Random(7)
        kills = []
        for k in range(KILLS):
            if k > 0:
                time.sleep(rng.uniform(0.5, 2.0))
            if all(get_job(self.coordinator.address, j)["state"] == "JOB_STATE_SUCCEEDED"
                   for j in jobs.values()):
                break
            name = first if k == 0 and first else rng.choice(sorted(self.workers))
            self.workers[name].proc.send_signal(signal.SIGKILL)
            self.workers[name].proc.wait(timeout=10)
            kills.append((name, time.monotonic()))
            self.workers[name] = self.start_worker(name)
        self.assertGreaterEqual(len(kills), 3, "the jobs ended before the chaos began")

        restarted = resumed = 0
        for seed, job_id in jobs.items():
            job = harness.wait_for_end(self.coordinator.address, job_id, 300)
            attempts = job["attempts"]
            restarted += len(attempts) > 1
            resumed += any("resumed_from" in a for a in attempts)
            print(f"job {seed}: {job['state']}, attempts resumed from",
                  [a.get("resumed_from", {}).get("epoch", 0) for a in attempts[1:]],
                  file=sys.stderr)
            if job["state"] == "JOB_STATE_FAILED":
                self.assertIn("restarts used", job["reason"], self.logs())
                continue
            self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", self.logs())
            twin = twin_jobs[seed]
            for key in ("test_accuracy", "train_loss"):
                self.assertEqual(job["result"][key], twin["result"][key], (seed, key, attempts))
            self.assertEqual(job["progress"]["switch_epochs"], twin["progress"]["switch_epochs"])
            # One attempt at a time: each began after the one before it ended.
            for before, after in zip(attempts, attempts[1:]):
                self.assertLessEqual(before["end_time"], after["start_time"], attempts)
            # Every event is there, numbered from 1 without a gap.
            sequences = [int(e["sequence"]) for e in self.events(job_id)]
            self.assertEqual(sequences, list(range(1, len(sequences) + 1)))
        self.assertGreaterEqual(restarted, 1, "no job was interrupted")
        self.assertGreaterEqual(resumed, 1, "no job resumed from a checkpoint")
        # No job was lost: all eight are listed.
        listed = muppetctl(self.coordinator.address, "list").stdout
        for job_id in [*twins.values(), *jobs.values()]:
            self.assertIn(job_id, listed)

    def test_a_coordinator_killed_while_a_job_resumes_resumes_it_once(self):
        job_id = self.submit(SEEDS[0])
        wait_for(lambda: get_job(self.coordinator.address, job_id)["progress"]
                 .get("last_checkpoint", {}).get("epoch", 0) >= 2, 120, "a checkpoint")
        running_on = get_job(self.coordinator.address, job_id)["worker_ids"][0]
        names = {w["worker_id"]: w["worker_name"] for w in json.loads(muppetctl(
            self.coordinator.address, "--output=json", "workers").stdout)["workers"]}
        name = names[running_on]
        self.workers[name].proc.send_signal(signal.SIGKILL)
        self.workers[name].proc.wait(timeout=10)
        self.workers[name] = self.start_worker(name)
        # The job is placed again: kill the coordinator as the new attempt says where it resumes.
        wait_for(lambda: log_events(self.logs(), "attempt_started", job_id)
                 or len(get_job(self.coordinator.address, job_id)["attempts"]) > 1, 60,
                 "the restart")
        self.coordinator.kill9()
        self.coordinator.start()
        job = harness.wait_for_end(self.coordinator.address, job_id, 300)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", self.logs())
        self.assertGreaterEqual(len(job["attempts"]), 2)
        resumed = [a for a in job["attempts"][1:] if "resumed_from" in a]
        self.assertTrue(resumed, job["attempts"])
        # The policy epochs after the checkpoint were trained again and decided once each in
        # the end: the job's progress counts each policy epoch once.
        epochs = [e["epoch"].get("epoch", 0) for e in self.events(job_id) if "epoch" in e]
        self.assertEqual(job["progress"]["epochs_completed"], max(epochs) + 1)


if __name__ == "__main__":
    unittest.main()
