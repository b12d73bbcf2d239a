"""End-to-end tests of the muppet-train binary: a real run on Fashion-MNIST, and bad input."""
import gzip
import json
import os
import subprocess
import tempfile
import unittest

BINARY = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muppet", "worker", "muppet-train")


def run(*args, timeout=300):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


class EndToEndTest(unittest.TestCase):
    def test_lenet5_one_epoch_on_fashion_mnist(self):
        with tempfile.TemporaryDirectory() as tmp:
            report_path = os.path.join(tmp, "report.json")
            # Fixed seed and thread count: the run is deterministic.
            result = run("--model=lenet5", "--epochs=1", "--batch-size=64", "--lr=0.01",
                         "--seed=0", "--threads=2", "--policy=fp32", f"--report={report_path}")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(report_path) as f:
                report = json.load(f)
        self.assertEqual(report["model"], "lenet5")
        self.assertEqual(report["dataset"], "fashion-mnist")
        self.assertEqual(report["policy"], "fp32")
        self.assertEqual(len(report["epochs"]), 1)
        epoch = report["epochs"][0]
        self.assertEqual(epoch["epoch"], 0)
        self.assertEqual(epoch["precision_bits"], 32)
        for key in ("diversity", "ratio", "threshold", "violations", "saturations"):
            self.assertIsNone(epoch[key], key)
        self.assertEqual(report["final"]["switch_epochs"], [])
        self.assertEqual(epoch["samples"], 60000)
        for key in ("train_accuracy", "test_accuracy"):
            self.assertGreaterEqual(epoch[key], 0.0)
            self.assertLessEqual(epoch[key], 1.0)
        self.assertGreater(epoch["images_per_second"], 0)
        self.assertGreater(epoch["seconds"], 0)
        self.assertGreaterEqual(report["final"]["test_accuracy"], 0.85)
        self.assertGreaterEqual(report["final"]["wall_seconds"], epoch["seconds"])
        # Not a terminal: one line per epoch, no progress bar.
        self.assertIn("epoch 1/1  fp32", result.stdout)
        self.assertNotIn("\r", result.stdout)

    def test_lenet5_at_fixed_8_bits_learns_in_one_epoch(self):
        with tempfile.TemporaryDirectory() as tmp:
            report_path = os.path.join(tmp, "report.json")
            result = run("--model=lenet5", "--epochs=1", "--lr=0.05", "--seed=0", "--threads=2",
                         "--policy=fixed:8", f"--report={report_path}")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(report_path) as f:
                report = json.load(f)
        self.assertEqual(report["policy"], "fixed:8")
        epoch = report["epochs"][0]
        self.assertEqual(epoch["precision_bits"], 8)
        self.assertIsInstance(epoch["saturations"], int)
        self.assertIsNone(epoch["diversity"])  # Only the muppet policy measures it.
        self.assertGreaterEqual(report["final"]["test_accuracy"], 0.80)
        self.assertIn("epoch 1/1  fixed8", result.stdout)

    def test_muppet_climbs_the_ladder_with_short_policy_epochs(self):
        with tempfile.TemporaryDirectory() as tmp:
            report_path = os.path.join(tmp, "report.json")
            result = run("--model=lenet5", "--epochs=3", "--train-limit=12800",
                         "--test-limit=2000", "--lr=0.05", "--seed=0", "--threads=2",
                         "--policy=muppet", "--policy-epoch-iterations=5",
                         f"--report={report_path}")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(report_path) as f:
                report = json.load(f)
        self.assertEqual(report["policy"], "muppet")
        switches = report["final"]["switches"]
        self.assertGreaterEqual(len(switches), 2, result.stdout)
        ladder = [8, 12, 14, 16, 32]
        for i, s in enumerate(switches):  # One rung at a time, in order.
            self.assertEqual((s["from_bits"], s["to_bits"]), (ladder[i], ladder[i + 1]))
        self.assertEqual(report["final"]["switch_epochs"], [s["epoch"] for s in switches])
        self.assertEqual(report["epochs"][0]["precision_bits"], 8)
        self.assertIsNotNone(report["epochs"][0]["diversity"])
        self.assertIsNotNone(report["epochs"][0]["threshold"])
        self.assertIn("precision switch: fixed8 -> fixed12", result.stdout)

    def test_two_ranks_climb_together_and_report_their_communication(self):
        with tempfile.TemporaryDirectory() as tmp:
            report_path = os.path.join(tmp, "report.json")
            result = run("--model=lenet5", "--epochs=3", "--train-limit=12800",
                         "--test-limit=2000", "--lr=0.05", "--seed=0", "--threads=2",
                         "--nproc=2", "--policy=muppet", "--policy-epoch-iterations=5",
                         f"--report={report_path}")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(report_path) as f:
                report = json.load(f)
        self.assertEqual((report["ranks"], report["threads"]), (2, 1))
        self.assertIn("2 ranks x 1 threads", result.stdout)
        self.assertGreaterEqual(len(report["final"]["switches"]), 1, result.stdout)
        epoch = report["epochs"][0]
        self.assertEqual(epoch["samples"], 12800)  # Both ranks' shares.
        self.assertGreater(epoch["rank_gradient_diversity"], 0)
        self.assertGreater(epoch["communication_bytes"], 0)
        self.assertGreater(epoch["communication_seconds"], 0)
        self.assertGreater(epoch["communication_exposed_seconds"], 0)
        self.assertGreaterEqual(report["final"]["test_accuracy"], 0.6)

    def test_fixed_point_routes_are_reported_forced_or_timed(self):
        with tempfile.TemporaryDirectory() as tmp:
            reports = {}
            for route in ("grid", "auto"):
                path = os.path.join(tmp, f"{route}.json")
                result = run("--model=lenet5", "--epochs=1", "--train-limit=1280",
                             "--test-limit=256", "--lr=0.05", "--seed=0", "--threads=2",
                             "--policy=fixed:12", f"--fixed-point-route={route}",
                             f"--report={path}")
                self.assertEqual(result.returncode, 0, result.stderr)
                with open(path) as f:
                    reports[route] = json.load(f)
        grid = reports["grid"]["fixed_point_routes"]
        self.assertTrue(grid)
        for c in grid:
            self.assertEqual((c["route"], c["measured"], c["code_bits"]), ("grid", False, 16))
            self.assertIsNone(c["integer_seconds"])
        passes = {(c["layer"], c["pass"]) for c in grid}
        self.assertIn(("conv1", "backward_weights"), passes)
        timed = reports["auto"]["fixed_point_routes"]
        self.assertEqual(len(timed), len(grid))
        for c in timed:
            self.assertTrue(c["measured"])
            self.assertEqual(c["route"], "grid" if c["grid_seconds"] < c["integer_seconds"]
                             else "integer")
        self.assertGreater(reports["grid"]["final"]["test_accuracy"], 0.3)

    def test_auto_ladder_keeps_the_levels_faster_than_fp32(self):
        # Two ranks: rank 0 measures, and both train the adopted ladder.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "report.json")
            result = run("--model=lenet5", "--epochs=2", "--train-limit=3200",
                         "--test-limit=500", "--lr=0.05", "--seed=0", "--threads=2",
                         "--nproc=2", "--ladder=auto", "--policy-epoch-iterations=5", "--alpha=1", "--beta=0",
                         "--resolution=2", "--patience=1", f"--report={path}")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(path) as f:
                report = json.load(f)
        probe = report["ladder_probe"]
        self.assertEqual([l["bits"] for l in probe["levels"]], [8, 12, 14, 16])
        for level in probe["levels"]:
            self.assertGreater(level["step_seconds"], 0)
            self.assertEqual(level["kept"], level["speedup_vs_fp32"] > 1)
        self.assertEqual(probe["ladder"], [l["bits"] for l in probe["levels"] if l["kept"]])
        self.assertIn("muppet-train: ladder measured against FP32", result.stdout)
        # The run climbs the measured ladder only, then FP32.
        first = probe["ladder"][0] if probe["ladder"] else 32
        self.assertEqual(report["epochs"][0]["precision_bits"] if not report["final"]["switches"]
                         else report["final"]["switches"][0]["from_bits"], first)
        for s in report["final"]["switches"]:
            self.assertIn(s["from_bits"], probe["ladder"])
            self.assertIn(s["to_bits"], probe["ladder"] + [32])


class BadInputTest(unittest.TestCase):
    def assertFails(self, args, message):
        result = run(*args)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(message, result.stderr)

    def test_unknown_flag(self):
        self.assertFails(["--model=lenet5", "--bogus=1"], "bogus")

    def test_missing_model(self):
        self.assertFails([], "--model is required")

    def test_unknown_model(self):
        self.assertFails(["--model=vgg16"], '--model: must be one of lenet5, resnet20, alexnet, '
                         'resnet18, googlenet, got "vgg16"')

    def test_bad_values_name_the_flag(self):
        self.assertFails(["--model=lenet5", "--batch-size=0"],
                         "--batch-size: must be in [1, 65536], got 0")
        self.assertFails(["--model=lenet5", "--lr=-1"], "--lr: must be finite and in (0, 10]")
        self.assertFails(["--model=lenet5", "--epochs=abc"], "epochs")
        self.assertFails(["--model=lenet5", "--threads=-1"], "--threads: must be in [0, 1024]")
        self.assertFails(["--model=lenet5", "--nproc=0"], "--nproc: must be in [1, 64], got 0")
        self.assertFails(["--model=lenet5", "--nproc=2", "--comm-timeout=0s"],
                         "--comm-timeout: must be positive, got 0")
        self.assertFails(["--model=lenet5", "--ladder=auto", "--policy=fp32"],
                         "--ladder: only allowed with kind KIND_MUPPET")
        self.assertFails(["--model=lenet5", "--fixed-point-route=fast"],
                         '--fixed-point-route: expected auto, integer or grid, got "fast"')
        self.assertFails(["--model=lenet5", "--nproc=3", "--batch-size=128"],
                         "--batch-size: must be divisible by the number of ranks")
        self.assertFails(["--model=lenet5", "--lr-schedule=sometimes"],
                         '--lr-schedule: expected constant, step:<epochs>:<gamma>')
        self.assertFails(["--model=lenet5", "--lr-schedule=step:0:0.1"],
                         "--lr-schedule.step.step_epochs: must be in [1, 10], got 0")

    def test_bad_policy_flags_name_the_flag(self):
        self.assertFails(["--model=lenet5", "--policy=int8"], '--policy: policy "int8": unknown')
        self.assertFails(["--model=lenet5", "--policy=fixed:20"],
                         "--policy: must be in [2, 16] or 32, got 20")
        self.assertFails(["--model=lenet5", "--ladder=12,8"], "--ladder[1]: must be greater")

    def test_corrupt_dataset_names_the_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            images = os.path.join(tmp, "train-images-idx3-ubyte.gz")
            with gzip.open(images, "wb") as f:
                f.write(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                        + b"\x00" * 100)
            self.assertFails(["--model=lenet5", "--dataset=idx", f"--data-dir={tmp}"],
                             f"{images}: truncated: expected 3920 bytes of pixels, got 100")

    def test_missing_dataset_directory(self):
        self.assertFails(["--model=lenet5", "--dataset=idx", "--data-dir=/nonexistent"],
                         "/nonexistent/train-images-idx3-ubyte: no such file")

    def test_unwritable_report(self):
        self.assertFails(["--model=lenet5", "--epochs=1", "--train-limit=256", "--test-limit=64",
                          "--report=/nonexistent/dir/report.json"],
                         "--report: cannot write /nonexistent/dir/report.json.tmp")


if __name__ == "__main__":
    unittest.main()
