"""muppetd on PostgreSQL: a real cluster started by the test (initdb, pg_ctl, a Unix socket),
muppetd --db=postgresql://…, and a worker. A job trains through a kill -9 of the coordinator,
which comes back on the same database and port; a second coordinator on the database is
refused, naming the first; the password in the URI is never logged."""
import json
import unittest

from tests import harness
from tests.harness import QUICK_JOB_FLAGS, get_job, muppetctl, wait_for


class PostgresServiceTest(harness.ProcessTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.PostgresCluster()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_a_job_survives_a_coordinator_kill9(self):
        uri = self.cluster.create_database("jobs")
        coordinator = self.start(port=harness.free_port(), db=uri)
        self.worker(coordinator.address)
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")] + ["--epochs=6"]
        result = muppetctl(coordinator.address, "submit", *flags)
        self.assertEqual(result.returncode, 0, result.stderr)
        job_id = result.stdout.split()[1]
        wait_for(lambda: get_job(coordinator.address, job_id)["progress"]
                 .get("epochs_completed", 0) >= 3, 120, "three policy epochs")
        coordinator.kill9()
        coordinator.start()  # The same database and port: the worker carries on.
        job = harness.wait_for_end(coordinator.address, job_id, 240)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED", coordinator.log())
        self.assertEqual(len(job["attempts"]), 1)  # The worker was never lost.
        sequences = [int(json.loads(line)["sequence"]) for line in muppetctl(
            coordinator.address, "--output=json", "watch", job_id).stdout.splitlines()]
        self.assertEqual(sequences, list(range(1, len(sequences) + 1)))
        self.assertIn(f"db=postgresql://muppet@{self.cluster.dir}/jobs", coordinator.log())

    def test_a_second_coordinator_is_refused_and_the_password_is_not_shown(self):
        self.cluster.create_database("shared")
        first = self.start(db=self.cluster.uri("shared", password="hunter2"))
        second = harness.subprocess.run(
            [harness.MUPPETD, "--insecure", "--listen=127.0.0.1:0", "--metrics-listen=",
             f"--db={self.cluster.uri('shared', password='hunter2')}"],
            capture_output=True, text=True, timeout=30)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(f"postgresql://muppet@{self.cluster.dir}/shared: in use by another "
                      "coordinator (muppetd pid", second.stderr)
        for log in (second.stderr, first.log()):
            self.assertNotIn("hunter2", log)


if __name__ == "__main__":
    unittest.main()
