"""Simulated underpass IP cameras: a Pillow scene of the road at the simulated water depth,
served as a JPEG snapshot and an MJPEG stream over HTTP (basic or digest auth)."""
