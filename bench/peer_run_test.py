"""peer_run's command line: values out of range exit with a message naming the flag, before
anything is trained; valid ones pass through."""
import contextlib
import io
import unittest

from bench import peer_run


class ParseArgsTest(unittest.TestCase):
    def rejects(self, flag, value):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), self.assertRaises(SystemExit) as exit_:
            peer_run.parse_args([f"{flag}={value}"])
        self.assertEqual(exit_.exception.code, 2)
        self.assertIn(f"{flag} must be at least", stderr.getvalue())
        self.assertIn(f"got {value}", stderr.getvalue())

    def test_rejects_values_out_of_range(self):
        for flag, value in (("--epochs", 0), ("--epochs", -3), ("--batch-size", 0),
                            ("--threads", 0), ("--train-limit", -1), ("--test-limit", -5)):
            with self.subTest(flag=flag, value=value):
                self.rejects(flag, value)

    def test_accepts_the_bounds(self):
        args = peer_run.parse_args(["--epochs=1", "--train-limit=0", "--test-limit=0"])
        self.assertEqual((args.epochs, args.train_limit, args.test_limit), (1, 0, 0))


if __name__ == "__main__":
    unittest.main()
