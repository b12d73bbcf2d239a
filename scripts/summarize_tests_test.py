"""scripts/summarize_tests.py: counts cases from test.xml files and target statuses."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize_tests  # noqa: E402

GTEST_XML = """<?xml version="1.0"?>
<testsuites><testsuite name="S">
  <testcase name="a" status="run" result="completed"/>
  <testcase name="b" status="run" result="completed"><failure message="x"/></testcase>
  <testcase name="c" status="run" result="skipped"><skipped message="no GPU"/></testcase>
  <testcase name="d" status="notrun" result="suppressed"/>
</testsuite></testsuites>"""

BAZEL_XML = """<?xml version="1.0"?>
<testsuites><testsuite name="pkg/t"><testcase name="pkg/t" status="run"/></testsuite></testsuites>"""


class SummarizeTestsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, relative, text):
        path = os.path.join(self.dir.name, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def summarize(self, log):
        log_path = self.write("log.txt", log)
        result = subprocess.run([sys.executable, summarize_tests.__file__, log_path,
                                 os.path.join(self.dir.name, "testlogs")],
                                capture_output=True, text=True)
        return result.returncode, result.stdout.strip().splitlines()[-1]

    def test_counts_cases_by_outcome(self):
        self.assertEqual(summarize_tests.count_cases(self.write("g.xml", GTEST_XML)), (1, 1, 2))

    def test_passing_run(self):
        self.write("testlogs/pkg/t/test.xml", BAZEL_XML)
        rc, line = self.summarize("//pkg:t    (cached) PASSED in 0.1s\n")
        self.assertEqual((rc, line), (0, "1 passed, 0 failed"))

    def test_reports_the_kernel_platform_of_each_run(self):
        self.write("testlogs/pkg/t/test.xml", BAZEL_XML)
        self.write("testlogs/pkg/t/test.log", "kernel platform: isa=avx512\nok\n")
        self.write("testlogs/pkg/t_avx2/test.xml", BAZEL_XML)
        self.write("testlogs/pkg/t_avx2/test.log", "kernel platform: isa=avx2\n")
        log_path = self.write("log.txt", "//pkg:t PASSED in 0.1s\n//pkg:t_avx2 PASSED in 0.1s\n")
        out = subprocess.run([sys.executable, summarize_tests.__file__, log_path,
                              os.path.join(self.dir.name, "testlogs")],
                             capture_output=True, text=True).stdout.splitlines()
        self.assertEqual(out, ["kernel platform: 1 targets ran on isa=avx2",
                               "kernel platform: 1 targets ran on isa=avx512",
                               "2 passed, 0 failed"])

    def test_failing_target_counts_at_least_one_failure(self):
        self.write("testlogs/pkg/t/test.xml", BAZEL_XML)  # XML says passed; Bazel says timeout.
        rc, line = self.summarize("//pkg:t    TIMEOUT in 60.0s\n//pkg:u   FAILED TO BUILD\n")
        self.assertEqual((rc, line), (1, "1 passed, 2 failed"))

    def test_skips_are_reported(self):
        self.write("testlogs/pkg/g/test.xml", GTEST_XML)
        rc, line = self.summarize("//pkg:g    FAILED in 1.0s\n")
        self.assertEqual((rc, line), (1, "1 passed, 1 failed, 2 skipped"))

    def test_no_tests_is_a_failure(self):
        rc, line = self.summarize("nothing here\n")
        self.assertEqual((rc, line), (1, "0 passed, 1 failed"))

    def test_sanitizer_and_fuzz_runs_are_counted_and_named(self):
        self.write("testlogs/pkg/g/test.xml", GTEST_XML)
        self.write("asan/pkg/t/test.xml", BAZEL_XML)
        log = self.write("log.txt", "//pkg:g    PASSED in 1.0s\n")
        asan = self.write("asan.txt", "//pkg:t PASSED in 2.0s\n//pkg:u FAILED in 1.0s\n")
        fuzz = self.write("fuzz.txt", "//pkg:f PASSED (1200 runs in 30 s)\n//pkg:h FAILED\n"
                                      "==1== ERROR: AddressSanitizer: heap-buffer-overflow\n")
        result = subprocess.run(
            [sys.executable, summarize_tests.__file__, log, os.path.join(self.dir.name, "testlogs"),
             "asan", asan, os.path.join(self.dir.name, "asan"), "fuzz", fuzz, "-"],
            capture_output=True, text=True)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout.splitlines(), [
            "FAILED: //pkg:u (FAILED, asan)",
            "asan: 1 passed, 1 failed",
            "FAILED: //pkg:h (FAILED, fuzz)",
            "fuzz: 1 passed, 1 failed",
            "3 passed, 3 failed, 2 skipped"])

    def test_an_empty_extra_run_is_a_failure(self):
        self.write("testlogs/pkg/t/test.xml", BAZEL_XML)
        log = self.write("log.txt", "//pkg:t PASSED in 0.1s\n")
        empty = self.write("fuzz.txt", "ERROR: build failed\n")
        result = subprocess.run(
            [sys.executable, summarize_tests.__file__, log, os.path.join(self.dir.name, "testlogs"),
             "fuzz", empty, "-"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout.splitlines()[-1], "1 passed, 1 failed")


if __name__ == "__main__":
    unittest.main()
