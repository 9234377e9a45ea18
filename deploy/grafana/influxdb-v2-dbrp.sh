#!/bin/sh
# InfluxDB 2.x: make the InfluxQL names the dashboards use (database akita, retention
# policies raw and agg_1m) resolve to buckets, through the v1 compatibility API's
# DBRP mappings. Needs the influx CLI configured (INFLUX_HOST, INFLUX_ORG, INFLUX_TOKEN).
# Downsampling into akita_agg_1m is a task on 2.x (continuous queries do not exist there).
set -eu
influx bucket create --name akita_raw --retention 90d 2>/dev/null || true
influx bucket create --name akita_agg_1m --retention 3650d 2>/dev/null || true
raw_id=$(influx bucket list --name akita_raw --hide-headers | cut -f1)
agg_id=$(influx bucket list --name akita_agg_1m --hide-headers | cut -f1)
influx v1 dbrp create --db akita --rp raw --bucket-id "$raw_id" --default
influx v1 dbrp create --db akita --rp agg_1m --bucket-id "$agg_id"
