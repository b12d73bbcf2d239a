"""The Python stubs that independent-client tests use: messages, optional presence, services."""
import unittest

from muppet.v1 import job_pb2, job_pb2_grpc, rendezvous_pb2_grpc, spec_pb2, worker_pb2_grpc


class ApiPythonStubsTest(unittest.TestCase):
    def test_job_spec_round_trips_with_optional_presence(self):
        spec = spec_pb2.JobSpec(batch_size=128, epochs=3)
        spec.model.name = "resnet20"
        spec.optimizer.learning_rate = 0.1
        spec.optimizer.momentum = 0.0  # Set to zero: present, unlike an unset field.
        decoded = spec_pb2.JobSpec.FromString(spec.SerializeToString())
        self.assertEqual(decoded, spec)
        self.assertTrue(decoded.optimizer.HasField("momentum"))
        self.assertFalse(decoded.optimizer.HasField("weight_decay"))

    def test_services_have_their_methods(self):
        expected = {
            job_pb2.DESCRIPTOR.services_by_name["JobService"]:
                {"SubmitJob", "GetJob", "ListJobs", "CancelJob", "WatchJob", "ListWorkers"},
        }
        for service, methods in expected.items():
            self.assertEqual({m.name for m in service.methods}, methods)
        self.assertTrue(job_pb2.DESCRIPTOR.services_by_name["JobService"]
                        .methods_by_name["WatchJob"].server_streaming)
        for stub in (job_pb2_grpc.JobServiceStub, worker_pb2_grpc.WorkerServiceStub,
                     rendezvous_pb2_grpc.RendezvousServiceStub):
            self.assertTrue(callable(stub))


if __name__ == "__main__":
    unittest.main()
