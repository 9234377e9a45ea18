"""NMEA 0183 GPS receivers (RMC + GGA) over a serial port or a TCP stream."""
