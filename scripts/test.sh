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
# Two workers (pytest-xdist), one test file each at a time so a file's module fixtures
# (servers) are started once: most tests wait on real servers, so even 2 cores finish in
# about two thirds of the serial time. AKITA_TEST_WORKERS=0 runs serially; the slowest
# tests are listed at the end so a growing one is seen.
"$VENV/bin/python" -m pytest -n "${AKITA_TEST_WORKERS:-2}" --dist loadfile --durations=20 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
