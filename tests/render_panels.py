"""Renders a Grafana dashboard's panels to PNG from Prometheus query_range results, with
matplotlib: what Grafana would draw, for readers without a Grafana (docs/dashboard/)."""
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def legend(fmt, metric):
    """A Grafana legendFormat with {{label}} replaced by the series' labels."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt or "")


def file_name(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".png"


def render(panel, results, switch_times, start, out_dir):
    """Draws `panel` (its targets' query_range results, in target order) to out_dir; marks
    `switch_times` (Unix seconds) as the dashboard's switch annotations. Returns the path."""
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    step = panel["type"] == "state-timeline"
    for target, series_list in zip(panel["targets"], results):
        for series in series_list:
            points = [(float(t) - start, float(v)) for t, v in series["values"]]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            label = legend(target.get("legendFormat"), series["metric"])
            if step:
                ax.step(xs, ys, where="post", label=label)
            else:
                ax.plot(xs, ys, label=label)
    for t in switch_times:
        ax.axvline(t - start, color="orange", linestyle="--", linewidth=1)
    ax.set_title(panel["title"] + ("  (dashed: precision switches)" if switch_times else ""),
                 fontsize=10)
    ax.set_xlabel("seconds into the run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = os.path.join(out_dir, file_name(panel["title"]))
    fig.savefig(path)
    plt.close(fig)
    return path
