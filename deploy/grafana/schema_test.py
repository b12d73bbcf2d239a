"""deploy/grafana/muppet.json type-checks against Grafana's published schema types: npm's
@grafana/schema with typescript's tsc --noEmit, both installed by scripts/setup.sh into
MUPPET_NPM_DIR (default /opt/muppet/npm). The dashboard is embedded as an object literal, so an
unknown key is an error, not only a wrong type."""
import json
import os
import shutil
import unittest

from deploy.tools import npm_tools

HERE = os.path.dirname(os.path.abspath(__file__))


def type_check(dashboard):
    """Runs tsc on `dashboard` (a dict) as a MuppetDashboard; returns the CompletedProcess."""
    tmp = npm_tools.scratch_dir()
    shutil.copy(os.path.join(HERE, "check", "muppet_dashboard.ts"), tmp)
    return npm_tools.type_check(
        tmp, "import type { MuppetDashboard } from './muppet_dashboard';\n\n"
        f"export const dashboard = {json.dumps(dashboard, indent=2)} satisfies MuppetDashboard;\n")


class DashboardSchemaTest(unittest.TestCase):
    def setUp(self):
        self.assertIsNone(npm_tools.missing())
        with open(os.path.join(HERE, "muppet.json")) as f:
            self.dashboard = json.load(f)

    def test_dashboard_matches_grafanas_schema(self):
        result = type_check(self.dashboard)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_an_unknown_key_and_a_wrong_type_are_caught(self):
        unknown = json.loads(json.dumps(self.dashboard))
        unknown["panels"][0]["gridPoz"] = unknown["panels"][0].pop("gridPos")
        result = type_check(unknown)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("gridPoz", result.stdout)
        wrong = json.loads(json.dumps(self.dashboard))
        wrong["panels"][0]["targets"][0]["expr"] = 3
        self.assertNotEqual(type_check(wrong).returncode, 0)


if __name__ == "__main__":
    unittest.main()
