"""deploy/image/build.sh builds the container image offline from Debian's packages, and the
image works: podman (with runc) runs every binary's --version in it with a read-only root
filesystem, as user 65532, with every shared library resolved; muppetd started in it serves its
gRPC health service and a muppetctl call from the image, keeps its store on a volume and stops
cleanly on SIGTERM. The Dockerfile builds the same image with podman's build, on a Debian base
made here in place of Docker Hub's (which these machines cannot reach).

Needs root, Debian's mirrors and the tools scripts/setup.sh installs (mmdebstrap, umoci,
podman, runc). About two minutes."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import grpc

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muppet")
BUILD = os.path.join(RUNFILES, "deploy", "image", "build.sh")
PROGRAMS = ("muppetd", "muppet-worker", "muppet-rank", "muppetctl", "muppet-train")
TMP = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
# The sandbox lacks CAP_SYS_RESOURCE, so podman's default ulimits cannot be set; crun refuses
# this machine's hybrid cgroups, runc with cgroupfs works. Storage is the test's own, its run
# root in /tmp: podman takes no run root path over 50 characters, and names an image it pulls
# from a layout after the layout's path, which must then be a valid reference.
CONTAINERS_CONF = os.path.join(TMP, "containers.conf")
RUN_ROOT = f"/tmp/muppet-image-test-{os.getpid()}"
PODMAN = ["podman", f"--root={TMP}/storage", f"--runroot={RUN_ROOT}", "--storage-driver=vfs",
          "--runtime=runc", "--cgroup-manager=cgroupfs", "--events-backend=file"]
RUN = [*PODMAN, "run", "--rm", "--network=host", "--read-only"]


def podman(*args, timeout=120, check=True):
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF})
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr}")
    return result


def run_in_image(*command, timeout=60):
    return subprocess.run([*RUN, "muppet:" + VERSION, *command], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF})


VERSION = subprocess.run([os.path.join(RUNFILES, "server", "muppetd"), "--version"],
                         capture_output=True, text=True, timeout=30).stdout.split()[-1]


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CONTAINERS_CONF, "w") as f:
            f.write("[containers]\ndefault_ulimits = []\n")
        cls.out = os.path.join(TMP, "image")
        build = subprocess.run([BUILD, "--binaries", RUNFILES, "--out", cls.out],
                               capture_output=True, text=True, timeout=900)
        if build.returncode != 0:
            raise AssertionError(f"build.sh failed:\n{build.stdout}\n{build.stderr}")
        cls.report = build.stdout
        os.makedirs(RUN_ROOT)
        layout = os.path.join(RUN_ROOT, "muppet")
        os.symlink(os.path.join(cls.out, "oci"), layout)
        pulled = podman("pull", "-q", f"oci:{layout}:{VERSION}").stdout.split()[-1]
        podman("tag", pulled, f"localhost/muppet:{VERSION}")

    @classmethod
    def tearDownClass(cls):
        podman("rm", "--all", "--force", check=False)
        podman("rmi", "--all", "--force", check=False)
        shutil.rmtree(RUN_ROOT, ignore_errors=True)
        shutil.rmtree(TMP, ignore_errors=True)

    def test_the_report_gives_size_and_contents(self):
        print(self.report)
        with open(os.path.join(self.out, "report.txt")) as f:
            self.assertEqual(f.read(), self.report)
        self.assertRegex(self.report, r"compressed \(the blobs a registry stores\): [\d.]+ MiB")
        self.assertIn("libdnnl2", self.report)
        for program in PROGRAMS:
            self.assertIn(f"/usr/local/bin/{program}", self.report)

    def test_config_runs_as_muppet_and_names_the_version(self):
        config = json.loads(podman("image", "inspect", f"muppet:{VERSION}").stdout)[0]["Config"]
        self.assertEqual(config["User"], "65532:65532")
        self.assertEqual(config["Labels"]["org.opencontainers.image.version"], VERSION)
        self.assertEqual(run_in_image("id", "-u").stdout.strip(), "65532")

    def test_every_binary_runs_with_all_its_libraries(self):
        for program in PROGRAMS:
            result = run_in_image(program, "--version")
            self.assertEqual((result.returncode, result.stdout.strip()),
                             (0, f"{program} {VERSION}"), result.stderr)
        ldd = run_in_image("sh", "-c", "ldd /usr/local/bin/*")
        self.assertEqual(ldd.returncode, 0, ldd.stderr)
        self.assertNotIn("not found", ldd.stdout)
        # The default dataset is in the image, so jobs train without a volume.
        data = run_in_image("ls", "/usr/share/datasets/fashion-mnist")
        self.assertIn("train-images-idx3-ubyte.gz", data.stdout)

    def test_muppetd_serves_health_in_the_image_and_keeps_its_store_on_a_volume(self):
        state = os.path.join(TMP, "state")
        os.makedirs(state)
        os.chown(state, 65532, 65532)
        name = "muppetd-image-test"
        podman("run", "-d", "--name", name, "--network=host", "--read-only",
               "-v", f"{state}:/var/lib/muppet", f"muppet:{VERSION}", "muppetd",
               "--insecure", "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
               "--port-file=/var/lib/muppet/ports", "--db=/var/lib/muppet/muppet.db")
        try:
            ports_file = os.path.join(state, "ports")
            deadline = time.monotonic() + 30
            while not os.path.exists(ports_file) and time.monotonic() < deadline:
                time.sleep(0.1)
            with open(ports_file) as f:
                grpc_port = f.read().split()[0]
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                # Raw bytes, so no generated health stubs are needed: HealthCheckRequest{} is
                # empty; SERVING is field 1 = 1.
                check = channel.unary_unary("/grpc.health.v1.Health/Check")
                self.assertEqual(check(b"", timeout=10), b"\x08\x01")
            workers = run_in_image("muppetctl", "--insecure", f"--server=127.0.0.1:{grpc_port}",
                                   "workers")
            self.assertEqual(workers.returncode, 0, workers.stderr)
            podman("stop", "--time=30", name, timeout=60)
            exit_code = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout
            self.assertEqual(exit_code.strip(), "0", podman("logs", name).stderr)
            self.assertTrue(os.path.getsize(os.path.join(state, "muppet.db")) > 0)
        finally:
            podman("rm", "-f", name, check=False)

    def test_the_dockerfile_builds_the_same_image(self):
        # Docker Hub's debian:bookworm-slim stands in as a Debian base made with mmdebstrap.
        base = os.path.join(TMP, "base.tar")
        subprocess.run(["mmdebstrap", "--quiet", "--mode=root", "--variant=apt",
                        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "bookworm", base,
                        "deb http://deb.debian.org/debian bookworm main"],
                       check=True, capture_output=True, timeout=600)
        podman("import", base, "docker.io/library/debian:bookworm-slim")
        podman("build", "--pull=never", "--network=host", "-t", "muppet-docker:test",
               os.path.join(self.out, "context"), timeout=900)
        for program in PROGRAMS:
            result = subprocess.run([*RUN, "muppet-docker:test", program, "--version"],
                                    capture_output=True, text=True, timeout=60,
                                    env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF})
            self.assertEqual(result.stdout.strip(), f"{program} {VERSION}", result.stderr)
        config = json.loads(podman("image", "inspect", "muppet-docker:test").stdout)[0]["Config"]
        self.assertEqual(config["User"], "65532:65532")


if __name__ == "__main__":
    unittest.main()
