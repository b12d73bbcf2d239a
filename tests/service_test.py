"""End-to-end tests of the service: real muppetd, muppet-worker and muppetctl processes on
127.0.0.1 train jobs to the end, survive a coordinator kill -9, and reject bad input."""
import json
import os
import subprocess
import time
import unittest

from tests import harness
from tests.harness import QUICK_JOB_FLAGS, get_job, muppetctl, wait_for

MUPPET_TRAIN = os.path.join(harness.RUNFILES, "worker", "muppet-train")


class ServiceTest(harness.ProcessTestCase):
    def test_a_job_runs_to_success_through_a_precision_switch(self):
        coordinator = self.start()
        worker = self.worker(coordinator.address)
        wait_for(lambda: "worker-1" in muppetctl(coordinator.address, "workers").stdout, 20,
                 "the worker to register")
        # What the worker's kernels run is logged and shown by the coordinator.
        self.assertRegex(muppetctl(coordinator.address, "workers").stdout,
                         r"(avx512|avx2|scalar), onednn \w+, int8 (onednn-vnni|muppet-avx2|scalar)")
        self.assertRegex(worker.log(), r"event=kernels .*isa=\w+ amx=(on|off) onednn_isa=\w+ int8_route=")
        result = muppetctl(coordinator.address, "submit", *QUICK_JOB_FLAGS, "--name=e2e",
                           "--watch")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr + worker.log())
        self.assertIn("precision switch at policy epoch", result.stdout)
        self.assertIn("fixed8 -> fixed12", result.stdout)
        self.assertIn("succeeded", result.stdout)
        job_id = result.stdout.split()[1]

        job = get_job(coordinator.address, job_id)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        self.assertGreaterEqual(len(job["progress"]["switch_epochs"]), 1)
        self.assertGreater(job["result"]["test_accuracy"], 0.5)
        listing = muppetctl(coordinator.address, "list")
        self.assertIn(job_id, listing.stdout)
        self.assertIn("succeeded", listing.stdout)
        # The coordinator recorded every decision: one epoch event per policy epoch.
        events = [json.loads(line) for line in
                  muppetctl(coordinator.address, "--output=json", "watch", job_id)
                  .stdout.splitlines()]
        self.assertEqual([int(e["sequence"]) for e in events], list(range(1, len(events) + 1)))
        epochs = [e["epoch"] for e in events if "epoch" in e]
        self.assertEqual(len(epochs), job["progress"]["epochs_completed"])
        switches = [e["precision_switch"] for e in events if "precision_switch" in e]
        self.assertEqual(len(switches), len(job["progress"]["switch_epochs"]))
        self.assertEqual(coordinator.stop(), 0, "SIGTERM drains and exits 0")
        self.assertIn("event=draining", coordinator.log())

    def test_the_coordinators_policy_trains_exactly_as_a_local_one(self):
        # Same spec, seed, thread count and a forced fixed-point route (auto's choices follow
        # timings): muppet-train (policy in process) and the service (policy in muppetd, over
        # ReportEpoch) must make the same decisions and end with the same model.
        flags = [*QUICK_JOB_FLAGS, "--fixed-point-route=integer"]
        report = os.path.join(self.tmp, "local.json")
        local = subprocess.run([MUPPET_TRAIN, *flags, "--threads=2",
                                f"--report={report}"], capture_output=True, text=True,
                               timeout=300)
        self.assertEqual(local.returncode, 0, local.stderr)
        with open(report) as f:
            local_final = json.load(f)["final"]
        coordinator = self.start()
        self.worker(coordinator.address)  # --threads=2, one slot.
        result = muppetctl(coordinator.address, "submit", *flags, "--watch")
        self.assertEqual(result.returncode, 0, result.stderr)
        job = get_job(coordinator.address, result.stdout.split()[1])
        self.assertEqual(job["result"]["switch_epochs"], local_final["switch_epochs"])
        self.assertEqual([int(e) - 1 for e in job["progress"]["switch_epochs"]],
                         [s["policy_epoch"] for s in local_final["switches"]])
        self.assertAlmostEqual(job["result"]["test_accuracy"], local_final["test_accuracy"],
                               places=9)

    def test_the_auto_ladder_is_measured_by_the_worker_and_adopted_by_the_policy(self):
        coordinator = self.start()
        self.worker(coordinator.address)
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--ladder")] + ["--ladder=auto"]
        result = muppetctl(coordinator.address, "submit", *flags, "--watch")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("ladder measured against FP32", result.stdout)
        job_id = result.stdout.split()[1]
        events = [json.loads(line) for line in
                  muppetctl(coordinator.address, "--output=json", "watch", job_id)
                  .stdout.splitlines()]
        choices = [e["ladder_choice"] for e in events if "ladder_choice" in e]
        self.assertEqual(len(choices), 1)
        levels = choices[0]["levels"]
        self.assertEqual([l["bits"] for l in levels], [8, 12, 14, 16])
        kept = [l["bits"] for l in levels if l.get("kept")]
        self.assertEqual(choices[0].get("ladder", []), kept)
        epochs = [e["epoch"] for e in events if "epoch" in e]
        self.assertEqual(epochs[0].get("precision_bits"), kept[0] if kept else 32)

    def test_kill9_loses_no_acknowledged_job_or_event(self):
        coordinator = self.start(port=harness.free_port())
        # A running job, which will be far enough in to have several epoch events...
        worker = self.worker(coordinator.address)
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        result = muppetctl(coordinator.address, "submit", *flags, "--epochs=4", "--name=running")
        self.assertEqual(result.returncode, 0, result.stderr)
        running = result.stdout.split()[1]
        # ...and jobs queued behind it: the worker's one slot is taken.
        queued = []
        for i in range(5):
            result = muppetctl(coordinator.address, "submit", *QUICK_JOB_FLAGS, f"--name=q{i}")
            self.assertEqual(result.returncode, 0, result.stderr)
            queued.append(result.stdout.split()[1])
        before = wait_for(lambda: (lambda j: j if j["progress"].get("epochs_completed", 0) >= 4
                                   else None)(get_job(coordinator.address, running)), 120,
                          "four reported epochs")
        # A watch that is open across the restart reconnects and resumes.
        watcher = subprocess.Popen(
            [harness.MUPPETCTL, "--insecure", f"--server={coordinator.address}", "--output=json",
             "watch",
             running], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        coordinator.kill9()
        coordinator.start()
        for job_id in queued:
            self.assertEqual(get_job(coordinator.address, job_id)["state"], "JOB_STATE_QUEUED")
        after = get_job(coordinator.address, running)
        self.assertGreaterEqual(after["progress"]["epochs_completed"],
                                before["progress"]["epochs_completed"])
        # The worker reconnects, reports the epochs it trained meanwhile, and finishes: the
        # restored policy decides on, and the history has no gap.
        done = wait_for(lambda: (lambda j: j if j["state"] != "JOB_STATE_RUNNING" else None)(
            get_job(coordinator.address, running)), 240, "the running job to end")
        self.assertEqual(done["state"], "JOB_STATE_SUCCEEDED", worker.log())
        events = [json.loads(line) for line in
                  muppetctl(coordinator.address, "--output=json", "watch", running)
                  .stdout.splitlines()]
        self.assertEqual([int(e["sequence"]) for e in events], list(range(1, len(events) + 1)))
        self.assertEqual([e["epoch"].get("epoch", 0) for e in events if "epoch" in e],
                         list(range(done["progress"]["epochs_completed"])))
        watched, errors = watcher.communicate(timeout=60)
        self.assertEqual(watcher.returncode, 0, errors)
        self.assertEqual([json.loads(line) for line in watched.splitlines()], events)

    def test_a_worker_is_back_within_seconds_of_a_coordinator_outage(self):
        coordinator = self.start(port=harness.free_port())
        worker = self.worker(coordinator.address)
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        result = muppetctl(coordinator.address, "submit", *flags, "--epochs=20")
        self.assertEqual(result.returncode, 0, result.stderr)
        job_id = result.stdout.split()[1]
        wait_for(lambda: get_job(coordinator.address, job_id)["progress"].get(
            "epochs_completed", 0) >= 3, 120, "three reported policy epochs")
        coordinator.kill9()
        outage = 5.0
        time.sleep(outage)
        coordinator.start()
        back = time.monotonic()
        reported = get_job(coordinator.address, job_id)["progress"].get("epochs_completed", 0)
        wait_for(lambda: get_job(coordinator.address, job_id)["progress"].get(
            "epochs_completed", 0) > reported, 30, "a report after the restart")
        # gRPC's default reconnect backoff kept workers away for 6-8 s after such an outage.
        self.assertLess(time.monotonic() - back, 3.0, worker.log()[-3000:])
        # The wait for the coordinator is not counted as training time.
        events = [json.loads(line) for line in
                  muppetctl(coordinator.address, "--output=json", "watch", job_id,
                            timeout=300).stdout.splitlines()]
        seconds = [e["epoch"]["metrics"]["seconds"] for e in events if "epoch" in e]
        self.assertLess(max(seconds), outage / 2, seconds)

    def test_bad_input_gets_clear_errors_and_exit_codes(self):
        coordinator = self.start()
        address = coordinator.address
        bad_yaml = os.path.join(self.tmp, "bad.yaml")
        with open(bad_yaml, "w") as f:
            f.write("model: {name: lenet5\nepochs: [3\n")
        result = muppetctl(address, "submit", f"--file={bad_yaml}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("bad.yaml", result.stderr)
        self.assertIn("YAML syntax error", result.stderr)

        typo = os.path.join(self.tmp, "typo.json")
        with open(typo, "w") as f:
            f.write('{"model": {"name": "lenet5"}, "epoch": 3}')
        result = muppetctl(address, "submit", f"--file={typo}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("typo.json: not a valid JobSpec", result.stderr)

        invalid = os.path.join(self.tmp, "invalid.yaml")
        with open(invalid, "w") as f:
            f.write("model: {name: vgg99}\ndataset: {name: fashion-mnist}\nbatch_size: 0\n"
                    "epochs: 1\noptimizer: {learning_rate: 0.1}\n")
        result = muppetctl(address, "submit", f"--file={invalid}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("spec.model.name", result.stderr)
        self.assertIn("spec.batch_size", result.stderr)

        result = muppetctl(address, "submit", f"--file={os.path.join(self.tmp, 'none.yaml')}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("none.yaml: cannot read", result.stderr)

        result = muppetctl(address, "get", "job-0000000000000000")
        self.assertEqual(result.returncode, 1)
        self.assertIn("NOT_FOUND", result.stderr)

        submitted = muppetctl(address, "submit", *QUICK_JOB_FLAGS).stdout.split()[1]
        self.assertEqual(muppetctl(address, "cancel", submitted).returncode, 0)
        result = muppetctl(address, "cancel", submitted)
        self.assertEqual(result.returncode, 1)
        self.assertIn("FAILED_PRECONDITION", result.stderr)
        result = muppetctl(address, "watch", submitted)
        self.assertEqual(result.returncode, 3, "a watched job that did not succeed")
        self.assertIn("cancelled", result.stdout)

        self.assertEqual(muppetctl(address, "frobnicate").returncode, 2)
        self.assertEqual(muppetctl(address, "list", "--state=sleeping").returncode, 2)
        result = muppetctl(address, "--timeout=-5s", "list")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--timeout: must be positive, got -5s", result.stderr)
        result = muppetctl(address, "submit", "--model=lenet5", "--epochs=-1")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--epochs: must not be negative, got -1", result.stderr)
        result = muppetctl(address, "submit", "--model=lenet5", "--max-restarts=-1")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--max-restarts: must be in [0, 100], got -1", result.stderr)
        result = subprocess.run([harness.WORKER, "--insecure", f"--server={address}",
                                 "--call-timeout=0s"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--call-timeout: must be positive, got 0", result.stderr)
        result = muppetctl(f"127.0.0.1:{harness.free_port()}", "--timeout=2s", "list")
        self.assertEqual(result.returncode, 1)
        self.assertIn("UNAVAILABLE", result.stderr)

        # Every binary: a flag it does not know or cannot parse is usage (2); help is success.
        duplicate = os.path.join(self.tmp, "duplicate.yaml")
        with open(duplicate, "w") as f:
            f.write("model: {name: lenet5}\nepochs: 3\noptimizer: {learning_rate: 0.1}\n"
                    "epochs: 30\n")
        result = muppetctl(address, "submit", f"--file={duplicate}")
        self.assertEqual(result.returncode, 2)
        self.assertIn("duplicate.yaml:4: duplicate key \"epochs\" (first on line 2)",
                      result.stderr)
        unparsable = {harness.MUPPETD: "--lease=soon", harness.WORKER: "--call-timeout=soon",
                      harness.MUPPETCTL: "--timeout=soon"}
        for binary, bad_value in unparsable.items():
            for arg, code in (("--no-such-flag", 2), (bad_value, 2), ("--help", 0),
                              ("--version", 0)):
                result = subprocess.run([binary, arg], capture_output=True, text=True,
                                        timeout=30)
                self.assertEqual(result.returncode, code, (binary, arg, result.stderr))


if __name__ == "__main__":
    unittest.main()
