"""End-to-end tests of data-parallel jobs: a real muppetd and two muppet-worker processes on
127.0.0.1, each running one rank of the job in a muppet-rank process, train through precision
switches that both ranks apply at the same iteration; kill -9 of one rank restarts the job, which
resumes from its checkpoint and ends exactly as an unbroken twin, or without restarts fails it,
naming the rank, within the communication timeout, leaving both workers able to train the next."""
import json
import os
import signal
import tempfile
import time
import unittest

from tests import harness
from tests.harness import QUICK_JOB_FLAGS, get_job, log_events, muppetctl, wait_for

COMM_TIMEOUT_SECONDS = 10


class DataParallelServiceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.coordinator = harness.Coordinator(self.tmp)
        self.workers = [
            harness.Worker(self.tmp, self.coordinator.address, name, "--threads=1",
                           f"--comm-timeout={COMM_TIMEOUT_SECONDS}s",
                           f"--checkpoint-dir={os.path.join(self.tmp, 'checkpoints')}")
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
        job = self.wait_for_end(job_id)
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

    def wait_for_end(self, job_id, timeout=240):
        return harness.wait_for_end(self.coordinator.address, job_id, timeout)

    def kill_rank_1(self, job_id):
        started = wait_for(lambda: [s for w in self.workers
                                    for s in log_events(w.log(), "ranks_started", job_id)
                                    if s["first_rank"] == "1"], 60, "rank 1 to start")
        wait_for(lambda: len(log_events(self.logs(), "rank_connected", job_id)) >= 2, 60,
                 "both ranks to connect")
        os.kill(int(started[-1]["pids"]), signal.SIGKILL)

    def test_kill9_of_a_rank_restarts_the_job_from_its_checkpoint_and_it_ends_as_unbroken(self):
        # Deterministic routes, so that the twin and the resumed job round alike.
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")] + [
            "--epochs=5", "--checkpoint-interval-epochs=1", "--fixed-point-route=integer"]
        twin = self.wait_for_end(self.submit_two_worker_job(*flags))
        self.assertEqual(twin["state"], "JOB_STATE_SUCCEEDED", self.logs())
        job_id = self.submit_two_worker_job(*flags)
        wait_for(lambda: get_job(self.coordinator.address, job_id)["progress"]
                 .get("last_checkpoint", {}).get("epoch", 0) >= 2, 120, "a checkpoint")
        self.kill_rank_1(job_id)
        job = self.wait_for_end(job_id, 2 * COMM_TIMEOUT_SECONDS + 240)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", self.logs())
        attempts = job["attempts"]
        self.assertEqual(len(attempts), 2, attempts)
        self.assertIn("rank 1", attempts[0]["end_reason"])
        self.assertIn("killed by signal 9", attempts[0]["end_reason"])
        self.assertGreaterEqual(attempts[1]["resumed_from"]["epoch"], 2)
        # Both ranks of attempt 2 loaded the checkpoint rank 0 chose.
        resumed = log_events(self.logs(), "attempt_started", job_id)
        self.assertEqual(len(resumed), 2, self.logs())
        self.assertTrue(all(r["resumed_from"] == attempts[1]["resumed_from"]["path"]
                            for r in resumed), resumed)
        for key in ("test_accuracy", "train_loss"):
            self.assertEqual(job["result"][key], twin["result"][key], key)
        self.assertEqual(job["progress"]["switch_epochs"], twin["progress"]["switch_epochs"])
        # muppetctl get shows the attempts and where the second resumed from.
        shown = muppetctl(self.coordinator.address, "get", job_id).stdout
        self.assertIn("attempts:    2 (at most 4)", shown)
        self.assertRegex(shown, r"2: on .* resumed from epoch \d+ \(.*checkpoint-\d+\.muppet\)")

    def test_kill9_of_a_rank_without_restarts_fails_the_job_naming_it_and_frees_both_workers(self):
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        job_id = self.submit_two_worker_job(*flags, "--epochs=50", "--max-restarts=0")
        self.kill_rank_1(job_id)
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
        done = self.wait_for_end(self.submit_two_worker_job(*QUICK_JOB_FLAGS))
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
