#!/bin/sh
# InfluxDB 3.x (Core/Enterprise): InfluxQL maps database "akita" + retention policy "raw"
# to the database named "akita/raw" (the db/rp naming convention), so create those two.
# Needs the influxdb3 CLI and an admin token in INFLUXDB3_AUTH_TOKEN.
# Downsampling into akita/agg_1m is a processing-engine plugin on 3.x.
set -eu
influxdb3 create database --retention-period 90d "akita/raw" || true
influxdb3 create database "akita/agg_1m" || true
