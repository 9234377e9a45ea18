"""Grafana dashboards as code for Akita City telemetry.

Each module in this package builds one dashboard with grafana-foundation-sdk from
InfluxQL queries over the InfluxDB layout of contract I (database ``akita``,
retention policies ``raw`` and ``agg_1m``). ``akita dashboards build`` renders them
to ``dashboards/json/``; ``akita dashboards push`` uploads them and the data source
through grafana-client. Provisioning files for a file-based Grafana live in
``deploy/grafana/``.
"""
