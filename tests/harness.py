"""Starts real muppetd and muppet-worker processes on 127.0.0.1 for integration tests, and
stops them however a test ends. Ports are chosen by the processes (port 0) and read back from
muppetd's --port-file."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muppet")
MUPPETD = os.path.join(RUNFILES, "server", "muppetd")
WORKER = os.path.join(RUNFILES, "worker", "muppet-worker")
MUPPETCTL = os.path.join(RUNFILES, "client", "muppetctl")

# A MuPPET job on Fashion-MNIST that climbs quickly: short policy epochs and T(j) = 1, so a
# window whose diversity falls below the maximum is a violation, and one violation climbs.
QUICK_JOB_FLAGS = [
    "--model=lenet5", "--epochs=2", "--batch-size=64", "--lr=0.05", "--lr-schedule=constant",
    "--train-limit=3200", "--test-limit=1000", "--policy-epoch-iterations=5",
    "--alpha=1", "--beta=0", "--resolution=2", "--patience=1", "--ladder=8,12,16",
]


def plaintext_unless_tls(args):
    """--insecure (plaintext gRPC on 127.0.0.1) unless `args` configure TLS themselves."""
    return [] if any(a.startswith(("--tls-", "--insecure")) for a in args) else ["--insecure"]


class _Process:
    """A child process that logs to `log_path` and is stopped with SIGTERM."""

    proc = None
    log_path = None

    def stop(self):
        """SIGTERM, as an operator would (SIGKILL after 30 s); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self):
        with open(self.log_path) as f:
            return f.read()


class Coordinator(_Process):
    """A muppetd process on a database file; `start` starts it again on the same file."""

    def __init__(self, tmp, *extra, port=0, db=None):
        self.tmp = tmp
        self.listen_port = port
        self.db = db or os.path.join(tmp, "muppet.db")
        self.extra = list(extra)
        self.log_path = os.path.join(tmp, "muppetd.log")
        self.proc = None
        self.start()

    def start(self):
        port_file = os.path.join(self.tmp, "ports")
        if os.path.exists(port_file):
            os.remove(port_file)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [MUPPETD, f"--listen=127.0.0.1:{self.listen_port}", "--metrics-listen=127.0.0.1:0",
             f"--db={self.db}", f"--port-file={port_file}", *plaintext_unless_tls(self.extra),
             *self.extra],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"muppetd did not start:\n{self.log()}")
            time.sleep(0.05)
        with open(port_file) as f:
            self.port, self.metrics_port = (int(p) for p in f.read().split())
        self.address = f"127.0.0.1:{self.port}"

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


class Worker(_Process):
    """A muppet-worker process."""

    def __init__(self, tmp, address, name="worker-1", *extra):
        self.log_path = os.path.join(tmp, f"{name}.log")
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [WORKER, f"--server={address}", f"--name={name}", "--threads=2",
             "--max-backoff=1s", *plaintext_unless_tls(extra), *extra], stdout=log, stderr=log)


class PostgresCluster:
    """A PostgreSQL 15 cluster of the test's own in a new directory under /tmp, listening only on
    a Unix socket there (as root, run as the postgres user: initdb refuses root)."""

    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="muppet-pg-", dir="/tmp")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", f"{self.dir}/data", "-U", "muppet", "-A", "trust", "--no-sync",
                  "-E", "UTF8")
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w",
                  "-o", f"-k {self.dir} -c listen_addresses= -c fsync=off", "start")

    def _run(self, program, *args):
        command = [os.path.join(self.BIN, program), *args]
        if os.geteuid() == 0:
            command = ["/usr/sbin/runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stdout}{result.stderr}")

    def uri(self, database, password=None):
        user = f"muppet:{password}" if password else "muppet"
        return f"postgresql://{user}@/{database}?host={self.dir}"

    def create_database(self, name):
        self._run("createdb", "-h", self.dir, "-U", "muppet", name)
        return self.uri(name)

    def stop(self):
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class ProcessTestCase(unittest.TestCase):
    """A test that starts coordinators and workers in a temporary directory of its own and
    stops them (SIGTERM) however it ends."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.processes = []

    def tearDown(self):
        for p in reversed(self.processes):
            p.stop()

    def start(self, *extra, port=0, db=None):
        coordinator = Coordinator(self.tmp, *extra, port=port, db=db)
        self.processes.append(coordinator)
        return coordinator

    def worker(self, address, name="worker-1", *extra):
        worker = Worker(self.tmp, address, name, *extra)
        self.processes.append(worker)
        return worker


def free_port():
    """A port that was free a moment ago (for a coordinator that must keep its port)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def muppetctl(address, *args, timeout=300):
    """Runs muppetctl against `address`; returns the CompletedProcess."""
    return subprocess.run([MUPPETCTL, f"--server={address}", *plaintext_unless_tls(args), *args],
                          capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get_job(address, job_id):
    """The job as `muppetctl --output=json get` prints it."""
    result = muppetctl(address, "--output=json", "get", job_id)
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)


def wait_for_end(address, job_id, timeout):
    """The job once it is in a final state."""
    return wait_for(lambda: (lambda j: j if j["state"] not in (
        "JOB_STATE_QUEUED", "JOB_STATE_SCHEDULED", "JOB_STATE_RUNNING") else None)(
            get_job(address, job_id)), timeout, f"job {job_id} to end")


def log_events(log, event, job_id):
    """The logfmt fields of each `event` line about `job_id`."""
    lines = []
    for line in log.splitlines():
        if f"event={event} " in line and f"job={job_id}" in line:
            lines.append(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    return lines
