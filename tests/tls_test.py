"""TLS end to end, with certificates made at test time by base/make_test_certs.sh (openssl): a
muppetd that serves only TLS unless told --insecure; muppetctl and workers that verify it
against a CA (a wrong CA, plaintext, or the system's roots are refused); a data-parallel job whose
ranks reach the coordinator over TLS as their worker does; and mutual TLS, where a worker's
certificate is its identity and a client without one cannot connect."""
import hashlib
import os
import subprocess
import unittest

from tests import harness
from tests.harness import QUICK_JOB_FLAGS, wait_for

CERTS_SCRIPT = os.path.join(harness.RUNFILES, "base", "make_test_certs.sh")


class TlsTest(harness.ProcessTestCase):

    def setUp(self):
        super().setUp()
        self.certs = os.path.join(self.tmp, "certs")
        subprocess.run(["bash", CERTS_SCRIPT, self.certs], check=True, timeout=60)
        self.admin_token = "adm-" + os.urandom(8).hex()
        self.worker_token = "wk-" + os.urandom(8).hex()
        self.tokens_file = os.path.join(self.tmp, "tokens")
        with open(self.tokens_file, "w") as f:
            for token, principal, role in ((self.admin_token, "ops", "admin"),
                                           (self.worker_token, "workers", "worker")):
                f.write(f"sha256:{hashlib.sha256(token.encode()).hexdigest()} {principal} "
                        f"{role}\n")
        self.admin = self.write("admin.token", self.admin_token)
        self.worker_token_file = self.write("worker.token", self.worker_token)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    def cert(self, name):
        return os.path.join(self.certs, name)

    def serve_tls(self, *extra):
        return self.start(f"--tls-cert={self.cert('server.pem')}",
                          f"--tls-key={self.cert('server.key')}",
                          f"--tokens-file={self.tokens_file}", *extra)

    def test_muppetd_refuses_to_serve_plaintext_unless_told(self):
        result = subprocess.run([harness.MUPPETD, "--listen=127.0.0.1:0", "--metrics-listen=",
                                 f"--db={self.tmp}/refused.db"], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--tls-cert and --tls-key: required, or --insecure", result.stderr)
        result = subprocess.run([harness.MUPPETD, "--insecure",
                                 f"--tls-cert={self.cert('server.pem')}", "--metrics-listen=",
                                 f"--db={self.tmp}/refused.db"], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--insecure: plaintext cannot be combined", result.stderr)
        result = subprocess.run([harness.MUPPETD, f"--tls-cert={self.cert('server.pem')}",
                                 f"--tls-key={self.cert('client.key')}", "--metrics-listen=",
                                 f"--db={self.tmp}/refused.db"], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"--tls-key: {self.cert('client.key')} is not the key of the certificate",
                      result.stderr)

    def test_clients_verify_the_coordinator_and_ranks_follow_their_worker(self):
        coordinator = self.serve_tls()
        self.assertIn("tls=on", coordinator.log())
        ca = f"--tls-ca={self.cert('ca.pem')}"
        ok = harness.muppetctl(coordinator.address, ca, f"--token-file={self.admin}", "list")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        for flags in ([f"--tls-ca={self.cert('other-ca.pem')}"],  # Another CA signed it.
                      ["--insecure"],                             # Plaintext against TLS.
                      []):                                        # The system's roots.
            refused = subprocess.run(
                [harness.MUPPETCTL, f"--server={coordinator.address}", *flags,
                 f"--token-file={self.admin}", "--timeout=5s", "list"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(refused.returncode, 1, flags)
            self.assertIn("UNAVAILABLE", refused.stderr, flags)

        # Two workers over TLS train a data-parallel job: each worker's ranks reach the
        # coordinator (and rendezvous) over TLS too.
        for name in ("w1", "w2"):
            self.worker(coordinator.address, name, ca, f"--token-file={self.worker_token_file}",
                        "--threads=1")
        wait_for(lambda: all(n in harness.muppetctl(
            coordinator.address, ca, f"--token-file={self.admin}", "workers").stdout
            for n in ("w1", "w2")), 30, "both workers")
        submitted = harness.muppetctl(coordinator.address, ca, f"--token-file={self.admin}",
                                      "submit", *QUICK_JOB_FLAGS, "--workers=2")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        job_id = submitted.stdout.split()[1]
        done = wait_for(lambda: (lambda r: r if '"JOB_STATE_SUCCEEDED"' in r.stdout or
                                 '"JOB_STATE_FAILED"' in r.stdout else None)(
            harness.muppetctl(coordinator.address, ca, f"--token-file={self.admin}",
                              "--output=json", "get", job_id)), 240, "the job")
        self.assertIn('"JOB_STATE_SUCCEEDED"', done.stdout, coordinator.log())

    def test_plaintext_coordinator_and_tls_client_do_not_talk(self):
        coordinator = self.start()  # --insecure, from the harness.
        refused = subprocess.run([harness.MUPPETCTL, f"--server={coordinator.address}",
                                  f"--tls-ca={self.cert('ca.pem')}", "--timeout=5s", "list"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("UNAVAILABLE", refused.stderr)

    def test_mutual_tls_makes_the_certificate_a_workers_identity(self):
        coordinator = self.serve_tls(f"--tls-client-ca={self.cert('ca.pem')}",
                                     "--require-client-cert")
        self.assertIn("tls=\"mutual (required)\"", coordinator.log())
        ca = f"--tls-ca={self.cert('ca.pem')}"
        client_cert = [f"--tls-cert={self.cert('client.pem')}",
                       f"--tls-key={self.cert('client.key')}"]
        # No token: the certificate (worker-1) is the worker's identity.
        self.worker(coordinator.address, "node-a", ca, *client_cert)
        wait_for(lambda: "node-a" in harness.muppetctl(
            coordinator.address, ca, *client_cert, f"--token-file={self.admin}",
            "workers").stdout, 30, "node-a to register")
        # The certificate alone is a worker, not a user.
        as_worker = harness.muppetctl(coordinator.address, ca, *client_cert, "list")
        self.assertEqual(as_worker.returncode, 1)
        self.assertIn("the worker role of worker-1 may not call it", as_worker.stderr)
        # Without a client certificate the handshake fails, token or not.
        refused = harness.muppetctl(coordinator.address, ca, f"--token-file={self.admin}",
                                    "--timeout=5s", "list")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("UNAVAILABLE", refused.stderr)


if __name__ == "__main__":
    unittest.main()
