"""A real Prometheus server (Debian's prometheus) scrapes muppetd during an end-to-end run, and
a query for muppet_job_word_length returns the job's series; the exposition passes promtool's
lint while the job is queued, while it runs and after it ends; and every query of the Grafana
dashboard (deploy/grafana/muppet.json), panels and annotations, returns series for the job;
each panel is drawn to PNG from those results."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from tests import harness, render_panels
from tests.harness import QUICK_JOB_FLAGS, muppetctl, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DASHBOARD = os.path.join(harness.RUNFILES, "deploy", "grafana", "muppet.json")


# Where the panels are drawn: docs/dashboard/ when scripts/render_dashboard.sh asks, else the
# test's undeclared outputs.
PNG_DIR = os.environ.get("MUPPET_DASHBOARD_PNG_DIR") or os.environ.get(
    "TEST_UNDECLARED_OUTPUTS_DIR", tempfile.gettempdir())


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


class PrometheusTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.coordinator = harness.Coordinator(self.tmp)
        self.worker = None  # Started once the job has been seen queued.
        self.prometheus = None

    def tearDown(self):
        if self.prometheus is not None:
            self.prometheus.terminate()
            self.prometheus.wait(timeout=30)
        if self.worker is not None:
            self.worker.stop()
        self.coordinator.stop()

    def start_prometheus(self):
        port = harness.free_port()
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: muppetd\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.coordinator.metrics_port}']\n")
        log = open(os.path.join(self.tmp, "prometheus.log"), "w")
        self.prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(self.tmp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
        return f"http://127.0.0.1:{port}"

    def query(self, base, promql):
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            body = json.loads(http_get(url))
        except OSError:
            return []
        return body["data"]["result"] if body.get("status") == "success" else []

    def query_range(self, base, promql, start, end):
        url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": promql, "start": start, "end": end, "step": "1s"})
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as e:  # 400: the query does not parse.
            return f"HTTP {e.code}: {e.read().decode()}"
        return body["data"]["result"] if body.get("status") == "success" else str(body)

    def dashboard_query(self, base, what, expr, job_id, start, end):
        """The query_range result of a dashboard query over the run; fails naming `what` when
        it does not parse or returns no series (or series of other jobs)."""
        # Grafana's variables, as Grafana substitutes them (its rate interval is at least four
        # scrape intervals; these scrapes are 1 s apart).
        promql = expr.replace("$job_id", job_id).replace("$__rate_interval", "15s")
        result = self.query_range(base, promql, start, end)
        self.assertIsInstance(result, list, f"{what}: {promql}: {result}")
        self.assertTrue(result, f"{what} returned no series: {promql}")
        if "$job_id" in expr:
            self.assertTrue(all(r["metric"].get("job_id", job_id) == job_id for r in result),
                            f"{what}: series of other jobs: {result}")
        return result

    def check_and_render_dashboard(self, base, job_id, start, end):
        dashboard = load_dashboard()
        switch_times = []
        for annotation in dashboard["annotations"]["list"]:
            result = self.dashboard_query(base, f'annotation "{annotation["name"]}"',
                                          annotation["target"]["expr"], job_id, start, end)
            switch_times += [float(s["values"][0][0]) for s in result]
        os.makedirs(PNG_DIR, exist_ok=True)
        for panel in dashboard["panels"]:
            results = [self.dashboard_query(base, f'panel "{panel["title"]}" query {t["refId"]}',
                                            t["expr"], job_id, start, end)
                       for t in panel["targets"]]
            marks = switch_times if "$job_id" in json.dumps(panel["targets"]) else []
            path = render_panels.render(panel, results, marks, start, PNG_DIR)
            self.assertGreater(os.path.getsize(path), 1000, path)

    def exposition(self):
        return http_get(f"http://127.0.0.1:{self.coordinator.metrics_port}/metrics")

    def exposition_with(self, needle):
        text = self.exposition()
        return text if needle in text else None

    def assert_lint_passes(self, text, when):
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, f"{when}: {lint.stdout}{lint.stderr}")

    def test_prometheus_scrapes_the_jobs_precision(self):
        base = self.start_prometheus()
        wait_for(lambda: self.query(base, 'up{job="muppetd"} == 1'), 60,
                 "Prometheus to scrape muppetd once")
        # Job series exist while the job runs: make it run for many 1 s scrapes. No worker yet,
        # so the job waits QUEUED, with its series already exported. Two ranks, so that the
        # data-parallel panels have allreduces to show.
        flags = [f for f in QUICK_JOB_FLAGS if not f.startswith("--epochs")]
        submitted = muppetctl(self.coordinator.address, "submit", *flags, "--epochs=20",
                              "--devices-per-worker=2")
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        job_id = submitted.stdout.split()[1]
        start = time.time() - 60
        job_series = f'muppet_job_word_length{{job_id="{job_id}"}}'
        queued = self.exposition()
        self.assertIn('muppet_jobs{state="queued"} 1', queued)
        self.assertIn(job_series, queued)
        self.assertIn(f'muppet_job_ranks{{job_id="{job_id}"}} 2', queued)
        self.assert_lint_passes(queued, "queued")
        self.worker = harness.Worker(self.tmp, self.coordinator.address, "worker-1", "--slots=2")
        running = wait_for(
            lambda: self.exposition_with(f'muppet_job_epoch{{job_id="{job_id}"}}'), 120,
            "the job's first policy epoch in the exposition")
        self.assertIn(job_series, running)
        self.assert_lint_passes(running, "running")
        self.assertIn(f'muppet_allreduce_bytes_total{{job_id="{job_id}",precision_bits="8"}}',
                      running)
        series = wait_for(lambda: self.query(base, f"last_over_time({job_series}[10m])"),
                          120, "Prometheus to scrape the job's word length")
        self.assertEqual(series[0]["metric"]["job_id"], job_id)
        self.assertIn(float(series[0]["value"][1]), (8.0, 12.0, 16.0, 32.0))
        result = muppetctl(self.coordinator.address, "watch", job_id)
        self.assertEqual(result.returncode, 0, result.stdout + self.worker.log())
        # The climbs were counted, and the RPC histogram saw the reports.
        wait_for(lambda: self.query(base, "sum(muppet_rpc_duration_seconds_count"
                                          '{method="ReportEpoch",code="OK"}) > 0'),
                 30, "ReportEpoch calls in muppet_rpc_duration_seconds")
        wait_for(lambda: self.query(
            base, f'max_over_time(muppet_precision_switches_total{{job_id="{job_id}"}}[10m])'),
            30, "the switch counter")
        ended = self.exposition()
        self.assertNotIn(job_series, ended)
        self.assert_lint_passes(ended, "ended")
        self.assertIn('muppet_build_info{version="', ended)
        # Every dashboard query over the run, after Prometheus has scraped the job's end.
        time.sleep(3)
        self.check_and_render_dashboard(base, job_id, start, time.time())

if __name__ == "__main__":
    unittest.main()
