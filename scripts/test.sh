#!/usr/bin/env bash
# Install what the tests need (Debian packages mosquitto, influxdb, postgresql, chromium,
# systemd when missing; the Python dev extra in .venv) and run lint + the whole test suite against real servers.
# Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
# systemd: systemd-analyze verifies the shipped units; fonts-ipafont-gothic: Japanese
# glyphs in screenshots
apt_install mosquitto influxdb postgresql chromium fonts-ipafont-gothic systemd
ensure_venv dev
cd "$ROOT"
# The Debian packages may start system-wide services on the default ports; the tests
# start their own servers on free ports and do not need them.
echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "==> pytest"
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
