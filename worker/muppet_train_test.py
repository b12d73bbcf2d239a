"""End-to-end tests of the muppet-train binary: a real run on Fashion-MNIST, and bad input."""
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
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
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(message, result.stderr)
        return result

    def test_unknown_flag(self):
        self.assertFails(["--model=lenet5", "--bogus=1"], "bogus")

    def test_help_and_version_exit_zero(self):
        for flag in ["--help", "--helpfull", "--version"]:
            result = run(flag)
            self.assertEqual(result.returncode, 0, (flag, result.stderr))
        self.assertIn("--report", run("--help").stdout)

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

    def test_cuda_runs_need_a_gpu_and_one_rank(self):
        self.assertFails(["--model=lenet5", "--device=tpu"],
                         '--device: expected cpu or cuda, got "tpu"')
        small = ["--model=lenet5", "--device=cuda", "--dataset=synthetic",
                 "--synthetic=1x12x12,4,64,16", "--epochs=1", "--batch-size=16"]
        self.assertFails(small + ["--nproc=2"], "data-parallel ranks over NCCL are planned")
        result = run(*small)
        if result.returncode == 0:
            self.skipTest("this machine has a GPU: the run trained on it")
        self.assertIn("resources.device_kind: CUDA, but this machine has 0 CUDA devices",
                      result.stderr)

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

    def test_a_job_too_big_for_memory_is_refused_with_the_estimate(self):
        # Passes validation, but the dataset alone is petabytes.
        self.assertFails(["--model=lenet5", "--dataset=synthetic",
                          "--synthetic=3x4096x4096,10,100000000,1"],
                         "(dataset.synthetic: 100000000 + 1 images of 3x4096x4096), more than")

    def test_unwritable_report_is_refused_before_training(self):
        result = self.assertFails(
            ["--model=lenet5", "--epochs=1", "--train-limit=256", "--test-limit=64",
             "--report=/nonexistent/dir/report.json"],
            "--report: /nonexistent/dir/report.json: cannot create a file in /nonexistent/dir")
        self.assertNotIn("epoch", result.stdout)

    def test_report_never_replaces_a_link_or_a_device(self):
        with tempfile.TemporaryDirectory() as tmp:
            kept = os.path.join(tmp, "kept.json")
            with open(kept, "w") as f:
                f.write("kept")
            link = os.path.join(tmp, "link.json")
            os.symlink(kept, link)
            fifo = os.path.join(tmp, "fifo")
            os.mkfifo(fifo)
            for path, kind in [(link, "a symbolic link"), (fifo, "a FIFO"),
                               ("/dev/null", "a device")]:
                result = self.assertFails(
                    ["--model=lenet5", "--epochs=1", "--train-limit=256", f"--report={path}"],
                    f"--report: {path}: is {kind}, not a regular file; it is not replaced")
                self.assertNotIn("epoch", result.stdout)
            self.assertTrue(os.path.islink(link))
            with open(kept) as f:
                self.assertEqual(f.read(), "kept")
            self.assertEqual(sorted(os.listdir(tmp)), ["fifo", "kept.json", "link.json"])

    def test_labels_are_checked_against_the_class_count(self):
        with tempfile.TemporaryDirectory() as tmp:
            def idx(name, magic, dims, payload):
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
                            + payload)
            labels = bytes([0, 1, 2, 255] * 16)
            idx("train-images-idx3-ubyte", 0x803, [64, 28, 28], bytes(64 * 784))
            idx("train-labels-idx1-ubyte", 0x801, [64], labels)
            idx("t10k-images-idx3-ubyte", 0x803, [4, 28, 28], bytes(4 * 784))
            idx("t10k-labels-idx1-ubyte", 0x801, [4], bytes([0, 1, 2, 0]))
            train_labels = os.path.join(tmp, "train-labels-idx1-ubyte")
            base = ["--model=lenet5", "--epochs=1", "--dataset=idx", f"--data-dir={tmp}"]
            self.assertFails(base, f"{train_labels}: labels go up to 255 but class 3 has no "
                             "training example; set model.num_classes")
            self.assertFails(base + ["--num-classes=10"],
                             f"{train_labels}: example 3 has label 255, not below the 10 classes "
                             "of model.num_classes")


# A MuPPET run on a Fashion-MNIST subset that climbs from 8 to 12 bits in epoch 3 (two policy
# epochs an epoch). A forced route: auto's choices follow timings, so even two uninterrupted
# runs would differ.
CLIMBING_RUN = ["--model=lenet5", "--epochs=6", "--batch-size=64", "--lr=0.05",
                "--train-limit=3200", "--test-limit=1000", "--seed=3", "--threads=2",
                "--fixed-point-route=integer", "--policy-epoch-iterations=25", "--alpha=1",
                "--beta=0", "--resolution=2", "--patience=2", "--ladder=8,12,16"]


def load(path):
    with open(path) as f:
        return json.load(f)


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.checkpoints = os.path.join(self.tmp, "checkpoints")

    def uninterrupted(self):
        report = os.path.join(self.tmp, "whole.json")
        result = run(*CLIMBING_RUN, f"--report={report}")
        self.assertEqual(result.returncode, 0, result.stderr)
        return load(report)

    def killed_after(self, epoch):
        """Starts the run with a checkpoint every epoch and kills it (SIGKILL) once the
        checkpoint of `epoch` is on disk; returns that checkpoint's path."""
        path = os.path.join(self.checkpoints, f"checkpoint-{epoch:06d}.muppet")
        proc = subprocess.Popen([BINARY, *CLIMBING_RUN, f"--checkpoint-dir={self.checkpoints}",
                                 "--checkpoint-interval-epochs=1", "--checkpoint-keep=10"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertTrue(os.path.exists(path), proc.stderr.read().decode())
        return path

    def resume(self, path, *extra):
        report = os.path.join(self.tmp, "resumed.json")
        result = run(*CLIMBING_RUN, f"--resume={path}", f"--report={report}", *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result, load(report)

    def test_a_killed_run_resumes_bit_identically_through_a_switch(self):
        whole = self.uninterrupted()
        self.assertEqual(whole["final"]["switches"][0]["to_bits"], 12)
        self.assertGreater(whole["final"]["switches"][0]["epoch"], 3)
        path = self.killed_after(3)
        result, resumed = self.resume(path)
        self.assertIn(f"resuming from {path} at epoch 3", result.stdout)
        self.assertEqual(resumed["resumed_from"], path)
        self.assertEqual([e["epoch"] for e in resumed["epochs"]], [3, 4, 5])
        for mine, theirs in zip(resumed["epochs"], whole["epochs"][3:]):
            for key in ("precision_bits", "train_loss", "train_accuracy", "test_accuracy",
                        "diversity", "ratio", "violations", "saturations", "learning_rate"):
                self.assertEqual(mine[key], theirs[key], f"epoch {mine['epoch']} {key}")
        # The policy's state came back whole: the same climb at the same policy epoch.
        self.assertEqual(resumed["final"]["switches"], whole["final"]["switches"])
        self.assertEqual(resumed["final"]["test_accuracy"], whole["final"]["test_accuracy"])

    def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(self):
        self.killed_after(3)
        newest = os.path.join(self.checkpoints, "checkpoint-000003.muppet")
        for name in os.listdir(self.checkpoints):  # What the killed run wrote after it.
            if name > "checkpoint-000003.muppet":
                os.remove(os.path.join(self.checkpoints, name))
        with open(newest, "r+b") as f:
            f.seek(os.path.getsize(newest) // 8)  # In the parameters: a quarter of the file.
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        result, resumed = self.resume(self.checkpoints)
        self.assertIn(f"skipped {newest}: section \"parameters\": CRC32C mismatch", result.stdout)
        self.assertEqual(resumed["resumed_from"],
                         os.path.join(self.checkpoints, "checkpoint-000002.muppet"))
        self.assertEqual(resumed["epochs"][0]["epoch"], 2)

    def test_bad_resumes_name_the_file_and_what_is_wrong(self):
        path = self.killed_after(2)
        other_model = run(*CLIMBING_RUN, "--model=resnet20", f"--resume={path}")
        self.assertEqual(other_model.returncode, 2)
        self.assertIn(f"{path}: written by a run of another spec (modified: "
                      'model.name: "lenet5" -> "resnet20")', other_model.stderr)
        too_short = run(*[f for f in CLIMBING_RUN if f != "--epochs=6"], "--epochs=2",
                        f"--resume={path}")
        self.assertIn(f"{path}: the run it holds has trained 2 epochs; epochs = 2 leaves none",
                      too_short.stderr)
        missing = run(*CLIMBING_RUN, f"--resume={self.tmp}/none.muppet")
        self.assertIn(f"--resume: {self.tmp}/none.muppet: cannot open the checkpoint",
                      missing.stderr)
        empty_dir = run(*CLIMBING_RUN, f"--resume={self.tmp}")
        self.assertIn("no checkpoint", empty_dir.stderr)
        no_dir = run(*CLIMBING_RUN, "--checkpoint-interval-epochs=1")
        self.assertIn("--checkpoint-interval-epochs: needs --checkpoint-dir", no_dir.stderr)


if __name__ == "__main__":
    unittest.main()
