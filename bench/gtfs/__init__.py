"""GTFS-Realtime refresh benchmark: matching + VehiclePositions + TripUpdates."""
