"""Tokens with roles, end to end: muppetd with a tokens file of SHA-256 hashes, a worker that
registers only with a worker-role token, users who see and cancel only their own jobs, denials
in the log (principal and method, never the token) and in muppet_rpc_denials_total, the tokens
file read again on SIGHUP, and reflection off while authentication is on."""
import hashlib
import os
import re
import signal
import unittest
import urllib.request

import grpc

from tests import harness


def token_line(token, principal, role):
    return f"sha256:{hashlib.sha256(token.encode()).hexdigest()} {principal} {role}\n"


class AuthTest(harness.ProcessTestCase):

    def setUp(self):
        super().setUp()
        self.tokens = {"admin": "adm-" + os.urandom(8).hex(), "alice": "al-" + os.urandom(8).hex(),
                       "bob": "bob-" + os.urandom(8).hex(), "worker": "wk-" + os.urandom(8).hex()}
        self.tokens_file = os.path.join(self.tmp, "tokens")
        self.write_tokens({"admin": ("ops", "admin"), "alice": ("alice", "user"),
                           "bob": ("bob", "user"), "worker": ("workers", "worker")})
        self.token_files = {}
        for who, token in self.tokens.items():
            self.token_files[who] = self.token_file(who, token)
        self.coordinator = self.start(f"--tokens-file={self.tokens_file}")

    def write_tokens(self, roles):
        with open(self.tokens_file, "w") as f:
            f.write("# principal and role of each token\n")
            for who, (principal, role) in roles.items():
                f.write(token_line(self.tokens[who], principal, role))

    def token_file(self, name, token):
        path = os.path.join(self.tmp, f"{name}.token")
        with open(path, "w") as f:
            f.write(token + "\n")
        return path

    def ctl(self, who, *args, timeout=300):
        return harness.muppetctl(self.coordinator.address, f"--token-file={self.token_files[who]}",
                                 *args, timeout=timeout)

    def submit(self, who):
        result = self.ctl(who, "submit", *harness.QUICK_JOB_FLAGS)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()[1]

    def test_a_worker_needs_a_worker_token_and_users_reach_only_their_jobs(self):
        # A user's token cannot register a worker: it exits naming the refusal.
        intruder = self.worker(self.coordinator.address, "intruder",
                               f"--token-file={self.token_files['alice']}")
        self.assertEqual(intruder.proc.wait(timeout=60), 2)
        self.assertIn("rejected the registration: RegisterWorker: the user role of alice may not "
                      "call it", intruder.log())
        self.assertNotIn("intruder", self.ctl("admin", "workers").stdout)

        self.worker(self.coordinator.address, "w1", f"--token-file={self.token_files['worker']}")
        harness.wait_for(lambda: "w1" in self.ctl("admin", "workers").stdout, 30, "w1")
        job = self.submit("alice")
        ended = harness.wait_for(
            lambda: (lambda r: r if '"JOB_STATE_SUCCEEDED"' in r.stdout or
                     '"JOB_STATE_FAILED"' in r.stdout else None)(
                         self.ctl("alice", "--output=json", "get", job)), 240, "alice's job")
        self.assertIn('"JOB_STATE_SUCCEEDED"', ended.stdout)
        self.assertIn('"owner": "alice"', ended.stdout)

        denied = self.ctl("bob", "get", job)
        self.assertEqual(denied.returncode, 1)
        self.assertIn("PERMISSION_DENIED", denied.stderr)
        self.assertIn(f"job {job} is not one of bob's jobs", denied.stderr)
        self.assertEqual(self.ctl("bob", "cancel", job).returncode, 1)
        self.assertEqual(self.ctl("bob", "watch", job).returncode, 1)
        self.assertNotIn(job, self.ctl("bob", "list").stdout)
        self.assertIn(job, self.ctl("alice", "list").stdout)
        self.assertIn(job, self.ctl("admin", "list", "--owner=alice").stdout)
        self.assertIn("PERMISSION_DENIED", self.ctl("bob", "list", "--owner=alice").stderr)
        self.assertIn("PERMISSION_DENIED", self.ctl("worker", "list").stderr)

        log = self.coordinator.log()
        self.assertIn("event=denied method=GetJob principal=bob reason=owner", log)
        self.assertIn("event=denied method=RegisterWorker principal=alice reason=role", log)
        for token in self.tokens.values():
            self.assertNotIn(token, log)
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{self.coordinator.metrics_port}/metrics", timeout=10).read().decode()
        denials = dict(re.findall(r'^muppet_rpc_denials_total(\{.*\}) (\S+)$', metrics, re.M))
        self.assertGreaterEqual(float(denials['{method="GetJob",reason="owner"}']), 1)  # get, watch
        self.assertEqual(float(denials['{method="RegisterWorker",reason="role"}']), 1)
        self.assertEqual(float(denials['{method="ListJobs",reason="role"}']), 1)

    def test_sighup_reloads_the_tokens_file(self):
        self.assertEqual(self.ctl("alice", "list").returncode, 0)
        old = self.tokens["alice"]
        self.tokens["alice"] = "al-new-" + os.urandom(8).hex()
        new_file = self.token_file("alice-new", self.tokens["alice"])
        self.write_tokens({"admin": ("ops", "admin"), "alice": ("alice", "user")})
        self.coordinator.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "event=tokens_reloaded tokens=2" in self.coordinator.log(), 20,
                         "the reload")
        refused = self.ctl("alice", "list")  # The old token file.
        self.assertEqual(refused.returncode, 1)
        self.assertIn("UNAUTHENTICATED", refused.stderr)
        self.assertEqual(self.ctl("bob", "list").returncode, 1)  # Bob's token is gone.
        ok = harness.muppetctl(self.coordinator.address, f"--token-file={new_file}", "list")
        self.assertEqual(ok.returncode, 0, ok.stderr)

        with open(self.tokens_file, "w") as f:
            f.write("sha256:zz alice user\n")
        self.coordinator.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "event=tokens_reload_failed" in self.coordinator.log(), 20,
                         "the failed reload")
        self.assertIn(f"{self.tokens_file}:1: the hash must be 64 hex digits",
                      self.coordinator.log())
        ok = harness.muppetctl(self.coordinator.address, f"--token-file={new_file}", "list")
        self.assertEqual(ok.returncode, 0, ok.stderr)  # The tokens in force stay.
        self.assertNotIn(old, self.coordinator.log())
        self.assertIsNone(self.coordinator.proc.poll())

    def test_reflection_is_off_and_health_open_with_tokens(self):
        channel = grpc.insecure_channel(self.coordinator.address)
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")  # No token needed: SERVING.
        reflect = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with self.assertRaises(grpc.RpcError) as e:
            b"".join(reflect(iter([b"\x3a\x00"]), timeout=10,
                             metadata=[("authorization", "Bearer " + self.tokens["admin"])]))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        channel.close()


if __name__ == "__main__":
    unittest.main()
