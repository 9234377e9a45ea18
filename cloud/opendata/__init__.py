"""Open data for journey planners and the public: no authentication, licence attached.

- GTFS-Realtime VehiclePositions for the city buses (``gtfs_rt``), trips matched
  against the GTFS static feed the city publishes (``gtfs_static``);
- snowplow positions and today's cleared road segments as GeoJSON (``geojson``);
- current flood sensor status named after the FIWARE FloodMonitoring model, as
  GeoJSON and CSV (``geojson``);
- an index (``/opendata/``) with the licence and attribution of every output.

The builders are pure functions over plain position/status records, so they are
tested without a server; ``routes`` reads the latest values from the service's
time-series store and caches the outputs for a few seconds.
"""
