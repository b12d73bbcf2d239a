"""End-to-end tests of data-parallel jobs: a real muppetd and two muppet-worker processes on
127.0.0.1, each running one rank of the job in a muppet-rank process, train through precision
switches that both ranks apply at the same iteration; kill -9 of one rank fails the job, naming
the rank, within the communication timeout, and leaves both workers able to train the next."""
import json
import os
import re
import signal
import tempfile
import time
import unittest

from tests import harness
from tests.harness import QUICK_JOB_FLAGS, muppetctl, wait_for

COMM_TIMEOUT_SECONDS = 10


def get_job(address, job_id):
    result = muppetctl(address, "--output=json", "get", job_id)
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)


def log_events(log, event, job_id):
    """The logfmt fields of each `event` line about `job_id`."""
    lines = []
    for line in log.splitlines():
        if f"event={event} " in line and f"job={job_id}" in line:
            lines.append(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    return lines


class DataParallelServiceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.coordinator = harness.Coordinator(self.tmp)
        self.workers = [
            harness.Worker(self.tmp, self.coordinator.address, name, "--threads=1",
                           f"--comm-timeout={COMM_TIMEOUT_SECONDS}s")
            for name in ("worker-a", "worker-b")]
        wait_for(lambda: all(n in muppetctl(self.coordinator.address, "workers").stdout
                             for n in ("worker-a", "worker-b")), 20, "both workers to register")

    def tearDown(self):
        for p in reversed([self.coordinator, *self.workers]):
            p.stop()

    def logs(self):
        return "".join(w.log() for w in self.workers)

    def submit_two_worker_job(self, *flags):
        result = muppetctl(self.coordinator.address, "submit", *flags, "--workers=2")
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()[1]

    def test_two_workers_train_one_job_and_switch_at_the_same_iteration(self):
        job_id = self.submit_two_worker_job(*QUICK_JOB_FLAGS)
        job = wait_for(lambda: (lambda j: j if j["state"] not in (
            "JOB_STATE_QUEUED", "JOB_STATE_SCHEDULED", "JOB_STATE_RUNNING") else None)(
                get_job(self.coordinator.address, job_id)), 240, "the job to end")
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", self.logs())
        self.assertEqual(len(job["worker_ids"]), 2)
        self.assertGreaterEqual(len(job["progress"]["switch_epochs"]), 1)
        # Each worker ran one rank in a process of its own...
        ranks = {}
        for worker in self.workers:
            started = log_events(worker.log(), "ranks_started", job_id)
            self.assertEqual(len(started), 1, worker.log())
            ranks[started[0]["first_rank"]] = worker
        self.assertEqual(sorted(ranks), ["0", "1"])
        # ...and both applied every switch after the same policy epoch: the same iteration.
        switches = {r: [(s["epoch"], s["policy_epoch"], s["from_bits"], s["to_bits"])
                        for s in log_events(w.log(), "precision_switch", job_id)]
                    for r, w in ranks.items()}
        self.assertGreaterEqual(len(switches["0"]), 1, self.logs())
        self.assertEqual(switches["0"], switches["1"])
        # The reports carry the across-rank gradient diversity.
        events = [json.loads(line) for line in
                  muppetctl(self.coordinator.address, "--output=json", "watch", job_id)
                  .stdout.splitlines()]
        diversities = [e["epoch"]["metrics"].get("rank_gradient_diversity")
                       for e in events if "epoch" in e]
        self.assertTrue(diversities and all(d is not None and d > 0 for d in diversities))
        self.assertRegex(muppetctl(self.coordinator.address, "watch", job_id).stdout,
                         r"policy epoch 0 \(epoch 0\) fixed8 loss [0-9.]+ rank-diversity [0-9.]+")

    def test_kill9_of_a_rank_fails_the_job_naming_it_and_frees_both_workers(self):
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        job_id = self.submit_two_worker_job(*flags, "--epochs=50")
        started = wait_for(lambda: [s for w in self.workers
                                    for s in log_events(w.log(), "ranks_started", job_id)
                                    if s["first_rank"] == "1"], 60, "rank 1 to start")
        wait_for(lambda: len(log_events(self.logs(), "rank_connected", job_id)) == 2, 60,
                 "both ranks to connect")
        os.kill(int(started[0]["pids"]), signal.SIGKILL)
        killed_at = time.monotonic()
        job = wait_for(lambda: (lambda j: j if j["state"] == "JOB_STATE_FAILED" else None)(
            get_job(self.coordinator.address, job_id)), 2 * COMM_TIMEOUT_SECONDS,
            "the job to fail")
        self.assertLess(time.monotonic() - killed_at, COMM_TIMEOUT_SECONDS + 5)
        self.assertIn("rank 1", job["reason"])
        self.assertIn("killed by signal 9", job["reason"])
        # No rank process is left behind: the survivor's rank exits too.
        wait_for(lambda: len(log_events(self.logs(), "rank_exited", job_id)) == 2, 30,
                 "the other rank to exit")
        # Both workers take the next job.
        next_id = self.submit_two_worker_job(*QUICK_JOB_FLAGS)
        done = wait_for(lambda: (lambda j: j if j["state"] not in (
            "JOB_STATE_QUEUED", "JOB_STATE_SCHEDULED", "JOB_STATE_RUNNING") else None)(
                get_job(self.coordinator.address, next_id)), 240, "the next job to end")
        self.assertEqual(done["state"], "JOB_STATE_SUCCEEDED", self.logs())

    def test_cancelling_a_two_worker_job_stops_every_rank(self):
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        job_id = self.submit_two_worker_job(*flags, "--epochs=50")
        wait_for(lambda: len(log_events(self.logs(), "rank_connected", job_id)) == 2, 60,
                 "both ranks to connect")
        result = muppetctl(self.coordinator.address, "cancel", job_id, "--reason=enough")
        self.assertEqual(result.returncode, 0, result.stderr)
        exits = wait_for(lambda: (lambda e: e if len(e) == 2 else None)(
            log_events(self.logs(), "rank_exited", job_id)), 30, "both ranks to exit")
        for e in exits:  # muppet-rank's status for a cancelled run.
            self.assertIn("exited with status 3", e["how"], self.logs())
        self.assertEqual(get_job(self.coordinator.address, job_id)["state"],
                         "JOB_STATE_CANCELLED")


if __name__ == "__main__":
    unittest.main()
