"""An independent Python client (python3-grpcio and the generated stubs, no muppet code)
submits, lists, gets and watches jobs on a real muppetd with a real muppet-worker."""
import os
import tempfile
import unittest

import grpc

from muppet.v1 import job_pb2, job_pb2_grpc, spec_pb2
from tests import harness


def quick_spec():
    spec = spec_pb2.JobSpec(batch_size=32, epochs=2, name="python")
    spec.model.name = "lenet5"
    spec.dataset.name = "synthetic"
    spec.dataset.synthetic.CopyFrom(spec_pb2.SyntheticDataset(
        channels=1, height=28, width=28, classes=10, train_size=320, test_size=64))
    spec.optimizer.learning_rate = 0.05
    spec.precision.kind = spec_pb2.PrecisionPolicySpec.KIND_MUPPET
    spec.precision.policy_epoch_iterations = 2
    spec.precision.alpha = 1.0
    spec.precision.beta = 0.0
    spec.precision.resolution_epochs = 2
    spec.precision.patience = 1
    return spec


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.coordinator = harness.Coordinator(cls.tmp)
        cls.worker = harness.Worker(cls.tmp, cls.coordinator.address)
        cls.channel = grpc.insecure_channel(cls.coordinator.address)
        cls.jobs = job_pb2_grpc.JobServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.worker.stop()
        cls.coordinator.stop()

    def test_submit_list_get_watch(self):
        job = self.jobs.SubmitJob(job_pb2.SubmitJobRequest(spec=quick_spec()), timeout=10)
        self.assertTrue(job.id.startswith("job-"))
        self.assertIn(job.state, (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_SCHEDULED))

        listed = self.jobs.ListJobs(job_pb2.ListJobsRequest(), timeout=10)
        self.assertIn(job.id, [j.id for j in listed.jobs])

        events = list(self.jobs.WatchJob(job_pb2.WatchJobRequest(job_id=job.id), timeout=120))
        self.assertEqual([e.sequence for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[0].state_change.to, job_pb2.JOB_STATE_QUEUED)
        self.assertEqual(events[-1].state_change.to, job_pb2.JOB_STATE_SUCCEEDED)
        self.assertTrue(any(e.HasField("precision_switch") for e in events))
        epochs = [e.epoch for e in events if e.HasField("epoch")]
        self.assertEqual([e.epoch for e in epochs], list(range(len(epochs))))

        got = self.jobs.GetJob(job_pb2.GetJobRequest(job_id=job.id), timeout=10)
        self.assertEqual(got.state, job_pb2.JOB_STATE_SUCCEEDED)
        self.assertEqual(got.progress.epochs_completed, len(epochs))
        self.assertTrue(got.spec.optimizer.HasField("momentum"))  # Defaults stored.

        succeeded = self.jobs.ListJobs(
            job_pb2.ListJobsRequest(states=[job_pb2.JOB_STATE_SUCCEEDED]), timeout=10)
        self.assertIn(job.id, [j.id for j in succeeded.jobs])

    def test_health_and_reflection_answer_over_the_wire(self):
        # Raw bytes, so that no generated health or reflection stubs are needed:
        # HealthCheckRequest{service: ""} is empty; SERVING is field 1 = 1.
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")
        # ServerReflectionRequest{list_services: ""} is field 7, length 0.
        reflect = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        reply = b"".join(reflect(iter([b"\x3a\x00"]), timeout=10))
        for service in (b"muppet.v1.JobService", b"muppet.v1.WorkerService",
                        b"muppet.v1.RendezvousService"):
            self.assertIn(service, reply)

    def test_errors_carry_the_right_codes(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.jobs.GetJob(job_pb2.GetJobRequest(job_id="job-0000000000000000"), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        bad = quick_spec()
        bad.epochs = 0
        bad.optimizer.learning_rate = -1
        with self.assertRaises(grpc.RpcError) as e:
            self.jobs.SubmitJob(job_pb2.SubmitJobRequest(spec=bad), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("spec.epochs", e.exception.details())
        self.assertIn("spec.optimizer.learning_rate", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            list(self.jobs.WatchJob(job_pb2.WatchJobRequest(job_id="job-1"), timeout=10))
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as e:
            self.jobs.ListJobs(job_pb2.ListJobsRequest(page_size=5000), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("page_size", e.exception.details())


if __name__ == "__main__":
    unittest.main()
