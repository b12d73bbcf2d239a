"""promtool (Debian's prometheus package) accepts the scrape configuration and the alert rules,
and the rules' unit tests (alerts_test.yml) pass."""
import os
import shutil
import subprocess
import unittest

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
HERE = os.path.dirname(os.path.abspath(__file__))


class PromtoolTest(unittest.TestCase):
    def promtool(self, *args):
        result = subprocess.run([PROMTOOL, *args], cwd=HERE, capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0,
                         f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def test_config_is_valid_and_loads_the_rules(self):
        out = self.promtool("check", "config", "prometheus.yml")
        self.assertIn("1 rule files found", out)

    def test_rules_are_valid(self):
        out = self.promtool("check", "rules", "alerts.yml")
        self.assertIn("5 rules found", out)

    def test_rule_unit_tests_pass(self):
        self.promtool("test", "rules", "alerts_test.yml")


if __name__ == "__main__":
    unittest.main()
