"""The Kubernetes manifests render with kubectl's built-in kustomize (offline; no API server
here), pass yamllint, and agree with the binaries: every container's flags are flags its binary
accepts, the workers reach the coordinator's Service, the image tag is the binaries' version,
and only the gpu overlay asks for GPUs."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

# A copy of the manifests with the runfiles' symlinks resolved: kustomize does not follow a
# symlinked kustomization.yaml.
HERE = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
for sub in ("base", os.path.join("overlays", "gpu")):
    shutil.copytree(os.path.join(os.path.dirname(os.path.abspath(__file__)), sub),
                    os.path.join(HERE, sub))
RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muppet")
BINARIES = {"muppetd": os.path.join(RUNFILES, "server", "muppetd"),
            "muppet-worker": os.path.join(RUNFILES, "worker", "muppet-worker")}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def render(overlay):
    result = subprocess.run([KUBECTL, "kustomize", os.path.join(HERE, overlay)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay}: {result.stderr}")
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)}


def pod_spec(objects, kind, name):
    return objects[(kind, name)]["spec"]["template"]["spec"]


class KustomizeTest(unittest.TestCase):
    def test_sources_pass_yamllint(self):
        result = subprocess.run(
            ["yamllint", "-d", "{extends: default, rules: {line-length: {max: 100}, "
             "document-start: disable}}", HERE], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_container_flag_is_accepted_by_its_binary(self):
        for overlay in ("base", "overlays/gpu"):
            objects = render(overlay)
            for (kind, name), obj in objects.items():
                if kind not in ("Deployment", "StatefulSet"):
                    continue
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    binary = BINARIES[container["command"][0]]
                    # $(VAR) as the kubelet expands it; the value does not matter here.
                    args = [re.sub(r"\$\(\w+\)", "x", a) for a in container["args"]]
                    result = subprocess.run([binary, *args, "--version"], capture_output=True,
                                            text=True, timeout=30)
                    self.assertEqual(result.returncode, 0,
                                     f"{overlay} {name}: {args}: {result.stderr}")

    def test_workers_reach_the_coordinator_service(self):
        objects = render("base")
        service = objects[("Service", "muppetd")]
        grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
        worker = pod_spec(objects, "Deployment", "muppet-worker")["containers"][0]
        self.assertIn(f"--server={service['metadata']['name']}:{grpc['port']}", worker["args"])
        coordinator = pod_spec(objects, "StatefulSet", "muppetd")["containers"][0]
        self.assertIn(f"--listen=0.0.0.0:{grpc['port']}", coordinator["args"])
        self.assertEqual(coordinator["readinessProbe"]["grpc"]["port"], grpc["port"])
        mount = coordinator["volumeMounts"][0]["mountPath"]
        self.assertIn(f"--db={mount}/muppet.db", coordinator["args"])
        for obj in objects.values():
            if obj["kind"] != "Namespace":
                self.assertEqual(obj["metadata"]["namespace"], "muppet", obj["metadata"])

    def test_image_tag_is_the_binaries_version(self):
        version = subprocess.run([BINARIES["muppetd"], "--version"], capture_output=True,
                                 text=True, timeout=30).stdout.split()[-1]
        objects = render("base")
        for kind, name in (("StatefulSet", "muppetd"), ("Deployment", "muppet-worker")):
            for container in pod_spec(objects, kind, name)["containers"]:
                self.assertEqual(container["image"], f"muppet:{version}")

    def test_only_the_gpu_overlay_asks_for_gpus(self):
        base = pod_spec(render("base"), "Deployment", "muppet-worker")
        gpu = pod_spec(render("overlays/gpu"), "Deployment", "muppet-worker")
        self.assertNotIn("nvidia.com/gpu", base["containers"][0]["resources"].get("limits", {}))
        self.assertEqual(gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], 1)
        self.assertEqual(gpu["tolerations"][0]["key"], "nvidia.com/gpu")
        self.assertEqual(gpu["nodeSelector"], {"nvidia.com/gpu.present": "true"})
        # The patch keeps the base's container: its flags, requests and security context.
        self.assertEqual(gpu["containers"][0]["args"], base["containers"][0]["args"])
        self.assertEqual(gpu["containers"][0]["resources"]["requests"],
                         base["containers"][0]["resources"]["requests"])


if __name__ == "__main__":
    unittest.main()
