#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: lint, types, then pytest on SQLite
# and on PostgreSQL, with FreeRADIUS's radclient (freeradius-utils) as the NAS-side client.
# PostgreSQL comes from $RADIUS_CONTRACTS_TEST_PG, else 127.0.0.1:5432
# (database test, trust auth, as on CI); a local server that is installed but stopped is started,
# and on a Debian machine without one it is installed. Extra arguments go to pytest.
set -euo pipefail
EXTRAS=test
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"

pg_ready() {
    "$VENV/bin/python" - <<'PY'
import asyncio, os, sys
import asyncpg
url = os.environ.get("RADIUS_CONTRACTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
async def main() -> None:
    connection = await asyncpg.connect(url, timeout=3)
    await connection.close()
try:
    asyncio.run(main())
except Exception as exc:
    print(f"PostgreSQL not reachable at {url}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

start_postgres() {
    # A Debian PostgreSQL that is installed but not running (e.g. after a reboot).
    command -v pg_ctlcluster >/dev/null || return 1
    for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 20); do pg_ready 2>/dev/null && return 0; sleep 0.5; done
    return 1
}

install_postgres() {
    # A fresh Debian machine: install the server and give it the `test` database with a
    # loopback trust rule for the `postgres` role, as CI has it.
    apt_install postgresql || return 1
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    grep -q "radius-contracts tests" "$hba" || sed -i \
        '1i host all postgres 127.0.0.1/32 trust  # radius-contracts tests' "$hba"
    start_postgres || return 1
    runuser -u postgres -- psql -q -c "CREATE DATABASE test" 2>/dev/null || true
    pg_ready
}

if ! pg_ready 2>/dev/null; then
    if [ -n "${RADIUS_CONTRACTS_TEST_PG:-}" ]; then
        pg_ready || true  # the suite reports it; never second-guess an explicit URL
    elif ! start_postgres && ! install_postgres; then
        echo "warning: no PostgreSQL for the tests; they will be skipped (failed under CI)" >&2
    fi
fi

# radclient from FreeRADIUS is the reference NAS-side client the RADIUS tests drive.
if ! command -v radclient >/dev/null; then
    apt_install freeradius-utils || echo "warning: radclient is missing; its tests will fail" >&2
fi
# radsecproxy is the real RadSec client the interop tests put in front of the daemon.
if ! command -v radsecproxy >/dev/null; then
    apt_install radsecproxy || echo "warning: radsecproxy is missing; its interop tests skip" >&2
fi
# FreeRADIUS 3.2 is the other real RadSec client: the reverse-CoA interop test proxies through
# it. Its own service must not start: it would hold 1812/1813, the daemon's default ports.
if ! command -v freeradius >/dev/null && [ "$(id -u)" = 0 ]; then
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # Debian's "do not start services" hook
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install freeradius || echo "warning: freeradius is missing; its interop test skips" >&2
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    if command -v systemctl >/dev/null; then systemctl disable --now freeradius 2>/dev/null || true; fi
fi

"$VENV/bin/ruff" check src tests bench
"$VENV/bin/ruff" format --check src tests bench
"$VENV/bin/mypy"
if [ $# -eq 0 ]; then
    # The C wire code (radius/_wire.c) has a pure Python twin: run the RADIUS wire tests on it
    # too, so the path a machine without a compiler takes stays tested.
    RADIUS_CONTRACTS_PURE_PYTHON=1 "$VENV/bin/pytest" -q -p no:randomly tests/unit/radius \
        tests/integration/test_radius_auth.py tests/integration/test_radius_chap.py \
        tests/integration/test_radius_reply_size.py tests/integration/test_radius_fuzz.py \
        tests/integration/test_radius_accounting.py
fi
exec "$VENV/bin/pytest" "$@"
