"""The smart-meter pilot report (issue 22): read success, battery, leaks, NRW per block."""
