"""The Kubernetes manifests render with kubectl's built-in kustomize (offline; no API server
here), pass yamllint, validate against the Kubernetes schemas (npm kubernetes-models: its
validators at run time, its types through tsc, which also rejects unknown keys), and agree with
the binaries: every container's flags and the coordinator's config file are accepted by their
binary, probes, Services, network policies and the ServiceMonitor name the ports the containers
listen on, the image is the one deploy/image/build.sh tags, nobody runs as root, and only the
gpu overlay asks for GPUs."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from deploy.tools import npm_tools

SOURCE = os.path.dirname(os.path.abspath(__file__))
# A copy of deploy/k8s and the dashboard's kustomization with the runfiles' symlinks resolved:
# kustomize does not follow a symlinked kustomization.yaml.
DEPLOY = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
HERE = os.path.join(DEPLOY, "k8s")
for sub in ("base", "overlays", "components"):
    shutil.copytree(os.path.join(SOURCE, sub), os.path.join(HERE, sub))
os.makedirs(os.path.join(DEPLOY, "grafana"))
for name in ("kustomization.yaml", "muppet.json"):
    shutil.copy(os.path.join(SOURCE, "..", "grafana", name), os.path.join(DEPLOY, "grafana"))
# The gpu overlay with the optional ServiceMonitor component, as an operator would compose it.
WITH_MONITOR = os.path.join(HERE, "overlays", "gpu-servicemonitor")
os.makedirs(WITH_MONITOR)
with open(os.path.join(WITH_MONITOR, "kustomization.yaml"), "w") as f:
    yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                    "resources": ["../gpu"], "components": ["../../components/servicemonitor"]},
                   f)
OVERLAYS = ("overlays/cpu", "overlays/gpu", "overlays/gpu-servicemonitor")

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muppet")
BINARIES = {"muppetd": os.path.join(RUNFILES, "server", "muppetd"),
            "muppet-worker": os.path.join(RUNFILES, "worker", "muppet-worker")}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def render(overlay):
    """The objects `kubectl kustomize` renders for `overlay`, in order."""
    result = subprocess.run([KUBECTL, "kustomize", os.path.join(HERE, overlay)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay}: {result.stderr}")
    return list(yaml.safe_load_all(result.stdout))


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects):
    return [o for o in objects if o["kind"] in ("DaemonSet", "StatefulSet", "Deployment")]


def model_module(obj):
    """The npm module that models `obj`'s kind."""
    api = obj["apiVersion"]
    package = ("@kubernetes-models/prometheus-operator" if api.startswith("monitoring.coreos.com/")
               else "kubernetes-models")
    return f"{package}/{api}/{obj['kind']}"


def validate(objects):
    """Runs the schemas' validators (node) and types (tsc) on `objects`; returns their output,
    empty when every object is valid."""
    tmp = npm_tools.scratch_dir()
    with open(os.path.join(tmp, "objects.json"), "w") as f:
        json.dump(objects, f)
    lines = []
    for i, obj in enumerate(objects):
        lines.append(f"import type {{ I{obj['kind']} as T{i} }} from '{model_module(obj)}';")
    for i, obj in enumerate(objects):
        lines.append(f"export const o{i} = {json.dumps(obj, indent=1)} satisfies T{i};")
    runtime = subprocess.run(["node", os.path.join(SOURCE, "check", "validate.js"),
                              "objects.json"], cwd=tmp, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "NODE_PATH": "node_modules"})
    types = npm_tools.type_check(tmp, "\n".join(lines) + "\n")
    out = ""
    if runtime.returncode != 0:
        out += "validators: " + runtime.stdout + runtime.stderr
    if types.returncode != 0:
        out += "tsc: " + types.stdout + types.stderr
    return out


def coordinator_config(objects):
    """muppetd.conf from the rendered ConfigMap, as a dict of flag name to value."""
    config_map = next(o for name, o in by_kind(objects, "ConfigMap").items()
                      if name.startswith("muppetd-config-"))
    flags = {}
    for line in config_map["data"]["muppetd.conf"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, value = (part.strip() for part in line.split("=", 1))
            flags[name] = value
    return config_map, flags


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def container_ports(container):
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def mounted_file(pod, container, path):
    """The volume and key that `path` in `container` comes from: (volume, key). A volume from a
    claim template is {"name": its name}."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container["volumeMounts"]:
        if path == mount["mountPath"] and "subPath" in mount:
            return volumes.get(mount["name"], {"name": mount["name"]}), mount["subPath"]
        if path.startswith(mount["mountPath"] + "/") and "subPath" not in mount:
            return (volumes.get(mount["name"], {"name": mount["name"]}),
                    path[len(mount["mountPath"]) + 1:])
    raise AssertionError(f"{container['name']}: nothing mounted at {path}")


def flag(container, name):
    prefix = f"--{name}="
    values = [a[len(prefix):] for a in container["args"] if a.startswith(prefix)]
    if len(values) != 1:
        raise AssertionError(f"{container['name']}: {len(values)} values of --{name}")
    return values[0]


class KustomizeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {overlay: render(overlay) for overlay in ("base", *OVERLAYS)}

    def test_sources_pass_yamllint(self):
        result = subprocess.run(
            ["yamllint", "-d", "{extends: default, rules: {line-length: {max: 100}, "
             "document-start: disable}}", SOURCE, os.path.join(DEPLOY, "grafana")],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_overlay_validates_against_the_kubernetes_schemas(self):
        self.assertIsNone(npm_tools.missing())
        for overlay in OVERLAYS:
            self.assertEqual(validate(self.rendered[overlay]), "", overlay)

    def test_the_schema_check_catches_unknown_keys_wrong_types_and_missing_fields(self):
        def mutated(change):
            objects = json.loads(json.dumps(self.rendered["overlays/gpu"]))
            change(by_kind(objects, "DaemonSet")["muppet-worker"]["spec"]["template"]["spec"])
            return objects

        unknown = validate(mutated(lambda pod: pod["containers"][0].update(imagePolicy="x")))
        self.assertIn("imagePolicy", unknown)
        wrong = validate(mutated(lambda pod: pod.update(terminationGracePeriodSeconds="30s")))
        self.assertIn("validators: DaemonSet muppet-worker", wrong)
        missing = validate(mutated(lambda pod: pod["containers"][0].pop("name")))
        self.assertIn("must have required property name", missing)

    def test_every_container_flag_and_the_config_file_are_accepted_by_its_binary(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        for overlay in OVERLAYS:
            objects = self.rendered[overlay]
            config_maps = by_kind(objects, "ConfigMap")
            for obj in workloads(objects):
                pod = obj["spec"]["template"]["spec"]
                for container in pod["containers"]:
                    args = []
                    for arg in container["args"]:
                        # $(VAR) as the kubelet expands it; the value does not matter here.
                        arg = re.sub(r"\$\(\w+\)", "x", arg)
                        name, _, value = arg.partition("=")
                        if name == "--config":
                            # The mounted file, as the container sees it.
                            volume, key = mounted_file(pod, container, value)
                            value = os.path.join(tmp, key)
                            with open(value, "w") as f:
                                f.write(config_maps[volume["configMap"]["name"]]["data"][key])
                        args.append(f"{name}={value}" if value else arg)
                    result = subprocess.run([BINARIES[container["command"][0]], *args,
                                             "--version"], capture_output=True, text=True,
                                            timeout=30)
                    self.assertEqual(result.returncode, 0,
                                     f"{overlay} {obj['metadata']['name']}: {args}: "
                                     f"{result.stderr}")

    def test_probes_services_and_policies_name_the_ports_the_containers_listen_on(self):
        for overlay in OVERLAYS:
            objects = self.rendered[overlay]
            _, config = coordinator_config(objects)
            pod = by_kind(objects, "StatefulSet")["muppetd"]["spec"]["template"]
            coordinator = pod["spec"]["containers"][0]
            ports = container_ports(coordinator)
            self.assertEqual(port_of(config["listen"]), ports["grpc"])
            self.assertEqual(port_of(config["metrics-listen"]), ports["metrics"])
            self.assertEqual(coordinator["readinessProbe"]["tcpSocket"]["port"], ports["grpc"])
            self.assertEqual(coordinator["livenessProbe"]["tcpSocket"]["port"], ports["grpc"])
            self.assertEqual(pod["metadata"]["annotations"]["prometheus.io/port"],
                             str(ports["metrics"]))
            store = mounted_file(pod["spec"], coordinator, config["db"])[0]
            self.assertIn(store["name"], [t["metadata"]["name"] for t in by_kind(
                objects, "StatefulSet")["muppetd"]["spec"]["volumeClaimTemplates"]])

            services = by_kind(objects, "Service")
            for name, port in (("muppetd", "grpc"), ("muppetd-metrics", "metrics")):
                (service_port,) = services[name]["spec"]["ports"]
                self.assertEqual((service_port["name"], service_port["targetPort"]),
                                 (port, port), name)
                self.assertEqual(services[name]["spec"]["selector"],
                                 pod["metadata"]["labels"] | services[name]["spec"]["selector"])
            metrics = services["muppetd-metrics"]
            self.assertEqual(metrics["metadata"]["annotations"]["prometheus.io/port"],
                             str(metrics["spec"]["ports"][0]["port"]))

            worker = by_kind(objects, "DaemonSet")["muppet-worker"]["spec"]["template"]["spec"]
            grpc_port = services["muppetd"]["spec"]["ports"][0]["port"]
            self.assertEqual(flag(worker["containers"][0], "server"), f"muppetd:{grpc_port}")
            # Checkpoints on a claim every worker shares: a restart on another node reads them.
            checkpoint_dir = flag(worker["containers"][0], "checkpoint-dir")
            (mount,) = [m for m in worker["containers"][0]["volumeMounts"]
                        if m["mountPath"] == checkpoint_dir]
            volume = next(v for v in worker["volumes"] if v["name"] == mount["name"])
            claim = by_kind(objects, "PersistentVolumeClaim")[
                volume["persistentVolumeClaim"]["claimName"]]
            self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteMany"])

            policy = by_kind(objects, "NetworkPolicy")["muppetd"]["spec"]
            allowed = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
            self.assertEqual(allowed, set(ports))
            for monitor in by_kind(objects, "ServiceMonitor").values():
                selected = [s for s in services.values() if monitor["spec"]["selector"][
                    "matchLabels"].items() <= s["metadata"]["labels"].items()]
                self.assertEqual([s["metadata"]["name"] for s in selected], ["muppetd-metrics"])
                self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")

    def test_the_coordinator_reads_the_tokens_file_and_workers_a_worker_token(self):
        for overlay in OVERLAYS:
            objects = self.rendered[overlay]
            sources = {}
            for obj in workloads(objects):
                pod = obj["spec"]["template"]["spec"]
                container = pod["containers"][0]
                name = "tokens-file" if obj["kind"] == "StatefulSet" else "token-file"
                volume, key = mounted_file(pod, container, flag(container, name))
                sources[obj["kind"]] = (volume["secret"]["secretName"], key)
            self.assertEqual(sources, {"StatefulSet": ("muppet-tokens", "tokens"),
                                       "DaemonSet": ("muppet-worker-token", "token")}, overlay)
            # The operator creates the Secrets; the manifests must not ship one.
            self.assertEqual(by_kind(objects, "Secret"), {})

    def test_the_coordinator_serves_tls_and_workers_verify_it_without_its_key(self):
        for overlay in OVERLAYS:
            objects = self.rendered[overlay]
            for obj in workloads(objects):
                pod = obj["spec"]["template"]["spec"]
                container = pod["containers"][0]
                self.assertNotIn("--insecure", container["args"], overlay)
                if obj["kind"] == "StatefulSet":
                    for name, key in (("tls-cert", "tls.crt"), ("tls-key", "tls.key")):
                        volume, mounted = mounted_file(pod, container, flag(container, name))
                        self.assertEqual((volume["secret"]["secretName"], mounted),
                                         ("muppetd-tls", key))
                else:
                    volume, mounted = mounted_file(pod, container, flag(container, "tls-ca"))
                    self.assertEqual((volume["secret"]["secretName"], mounted),
                                     ("muppetd-tls", "ca.crt"))
                    self.assertEqual([i["key"] for i in volume["secret"]["items"]], ["ca.crt"])

    def test_every_image_is_the_one_the_image_build_tags(self):
        version = subprocess.run([BINARIES["muppetd"], "--version"], capture_output=True,
                                 text=True, timeout=30).stdout.split()[-1]
        for overlay in OVERLAYS:
            for obj in workloads(self.rendered[overlay]):
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    self.assertEqual(container["image"], f"muppet:{version}")

    def test_no_container_runs_as_root_or_writes_its_root_filesystem(self):
        for overlay in OVERLAYS:
            for obj in workloads(self.rendered[overlay]):
                pod = obj["spec"]["template"]["spec"]
                self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                self.assertGreater(pod["securityContext"]["runAsUser"], 0)
                self.assertFalse(pod["automountServiceAccountToken"])
                for container in pod["containers"]:
                    context = container["securityContext"]
                    self.assertNotEqual(context.get("runAsUser"), 0)
                    self.assertFalse(context["allowPrivilegeEscalation"])
                    self.assertTrue(context["readOnlyRootFilesystem"])
                    self.assertEqual(context["capabilities"]["drop"], ["ALL"])

    def test_only_the_gpu_overlay_asks_for_gpus(self):
        def worker(overlay):
            return by_kind(self.rendered[overlay], "DaemonSet")["muppet-worker"]["spec"][
                "template"]["spec"]

        cpu, gpu, base = worker("overlays/cpu"), worker("overlays/gpu"), worker("base")
        self.assertNotIn("nvidia.com/gpu", cpu["containers"][0]["resources"].get("limits", {}))
        self.assertNotIn("nodeSelector", cpu)
        self.assertEqual(gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], 1)
        self.assertEqual(gpu["tolerations"][0]["key"], "nvidia.com/gpu")
        self.assertEqual(gpu["nodeSelector"], {"nvidia.com/gpu.present": "true"})
        # The patch keeps the base's container: its flags, requests and security context.
        self.assertEqual(gpu["containers"][0]["args"], base["containers"][0]["args"])
        self.assertEqual(gpu["containers"][0]["resources"]["requests"],
                         base["containers"][0]["resources"]["requests"])
        self.assertEqual(flag(cpu["containers"][0], "threads"),
                         cpu["containers"][0]["resources"]["requests"]["cpu"])

    def test_the_dashboard_config_map_is_the_dashboard(self):
        with open(os.path.join(DEPLOY, "grafana", "muppet.json")) as f:
            dashboard = f.read()
        for overlay in OVERLAYS:
            objects = self.rendered[overlay]
            config_map = by_kind(objects, "ConfigMap")["muppet-dashboard"]
            self.assertEqual(config_map["data"]["muppet.json"], dashboard)
            self.assertEqual(config_map["metadata"]["labels"]["grafana_dashboard"], "1")
            for obj in objects:
                if obj["kind"] != "Namespace":
                    self.assertEqual(obj["metadata"]["namespace"], "muppet", obj["metadata"])


if __name__ == "__main__":
    unittest.main()
