"""Benchmark of the city-scale simulator: start-up time, RSS, Modbus reads/s served."""
