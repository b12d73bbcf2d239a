#!/usr/bin/python3
"""Counts test cases of one `bazel test` run and prints `N passed, N failed[, N skipped]`.

Input: the captured output of `bazel test --test_summary=short` (status per target) and the
bazel-testlogs tree (per-case results in each target's test.xml, which GoogleTest writes, and
Bazel writes for other tests with one case per target). A target Bazel reports as not passing
counts at least one failure even when its XML says otherwise (a crash at exit, a timeout).
Before that line it prints which kernel platforms (ISA of muppet's kernels, oneDNN's ISA, the
8-bit route) the ISA-dependent tests ran on, from the "kernel platform:" line each writes to its
test.log: every such test runs once natively and once forced to AVX2.
Further runs follow as NAME LOG TESTLOGS triples (TESTLOGS "-" for none): the sanitizer run and
the fuzzers, whose LOG has the same "<label> PASSED|FAILED" lines; a target without a test.xml
counts as one case. Their failures are printed with the run's name.
Exits 1 if anything failed or no test ran.
"""
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

STATUS = re.compile(r"^(//\S+)\s+(?:\(cached\)\s+)?(PASSED|FAILED TO BUILD|FAILED|TIMEOUT|"
                    r"NO STATUS|FLAKY|INCOMPLETE|SKIPPED)\b")


def target_statuses(log_text):
    return {m.group(1): m.group(2) for m in map(STATUS.match, log_text.splitlines()) if m}


def count_cases(xml_path):
    """Returns (passed, failed, skipped) test cases of one test.xml."""
    passed = failed = skipped = 0
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif (case.find("skipped") is not None or case.get("result") in ("skipped", "suppressed")
              or case.get("status") == "notrun"):
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


PLATFORM = re.compile(r"^kernel platform: (.*)$", re.MULTILINE)


def platforms(testlogs, labels):
    """Returns {platform description: number of targets whose test.log names it}."""
    counts = {}
    for label in labels:
        package, name = label[2:].split(":")
        log = testlogs / package / name / "test.log"
        if not log.exists():
            continue
        found = set(PLATFORM.findall(log.read_text(errors="replace")))
        for platform in found:
            counts[platform] = counts.get(platform, 0) + 1
    return counts


def count_run(name, log_path, testlogs):
    """Returns (passed, failed, skipped, statuses) of one run; prints its failures."""
    statuses = target_statuses(pathlib.Path(log_path).read_text(errors="replace"))
    passed = failed = skipped = 0
    for label, status in sorted(statuses.items()):
        xml_path = None
        if testlogs is not None:
            package, target = label[2:].split(":")
            xml_path = testlogs / package / target / "test.xml"
        if status == "FAILED TO BUILD":
            p, f, s = 0, 0, 0
        elif xml_path is not None and xml_path.exists():
            p, f, s = count_cases(xml_path)
        else:
            p, f, s = (1, 0, 0) if status in ("PASSED", "FLAKY") else (0, 0, 0)
        if status not in ("PASSED", "FLAKY"):
            f = max(f, 1)
            print(f"FAILED: {label} ({status}{', ' + name if name else ''})")
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return passed, failed, skipped, statuses


def main():
    args = sys.argv[1:]
    runs = [("", args[0], pathlib.Path(args[1]))]
    for i in range(2, len(args), 3):
        name, log, testlogs = args[i:i + 3]
        runs.append((name, log, None if testlogs == "-" else pathlib.Path(testlogs)))
    passed = failed = skipped = 0
    ran = True
    first_statuses = None
    for name, log, testlogs in runs:
        p, f, s, statuses = count_run(name, log, testlogs)
        first_statuses = statuses if first_statuses is None else first_statuses
        passed, failed, skipped = passed + p, failed + f, skipped + s
        if not statuses:
            print(f"FAILED: no test ran{' in the ' + name + ' run' if name else ''}")
            ran = False
        if name:
            print(f"{name}: {p} passed, {f} failed" + (f", {s} skipped" if s else ""))
    for platform, targets in sorted(platforms(runs[0][2], first_statuses).items()):
        print(f"kernel platform: {targets} targets ran on {platform}")
    line = f"{passed} passed, {failed + (0 if ran else 1)} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or not ran else 0


if __name__ == "__main__":
    sys.exit(main())
