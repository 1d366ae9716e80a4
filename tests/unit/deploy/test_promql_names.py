"""The PromQL name extractor the dashboard/alert tests rely on."""

from __future__ import annotations

from tests.promql_names import exposed_names, metric_names


def test_metric_names_of_expressions() -> None:
    assert metric_names('sum by (role) (classroom_classrooms{instance=~"$instance"})') == {"classroom_classrooms"}
    assert metric_names(
        'histogram_quantile(0.95, sum by (le) (rate(classroom_join_latency_seconds_bucket[$__rate_interval])))'
    ) == {"classroom_join_latency_seconds_bucket"}
    disk = "classroom_data_free_bytes / classroom_data_size_bytes < 0.03 or classroom_data_free_bytes < 2e9"
    assert metric_names(disk) == {"classroom_data_free_bytes", "classroom_data_size_bytes"}
    assert metric_names('increase(x_total{code="by (a)"}[10m]) > 0 unless on (instance) y') == {"x_total", "y"}
    assert metric_names("time() - classroom_metrics_snapshot_timestamp_seconds > 30") == {
        "classroom_metrics_snapshot_timestamp_seconds"}


def test_exposed_names() -> None:
    text = ("# TYPE a counter\na_total 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
            "# TYPE g gauge\n")
    assert {"a", "a_total", "h_bucket", "h_sum", "h_count", "g"} <= exposed_names(text)
