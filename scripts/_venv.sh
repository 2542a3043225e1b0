# Sourced by scripts/serve.sh and scripts/test.sh: make ./.venv and install the project into it.
# EXTRAS may name pip extras to add, e.g. EXTRAS=test.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

apt_install() {
    # Debian's python3 lacks venv/ensurepip and the tools the tests use; install what is missing.
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "please install: $*" >&2
        return 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi

# The C wire code (src/radius_contracts/radius/_wire.c), batched UDP I/O (radius/_udp.c) and
# MS-CHAPv2 check (src/radius_contracts/aaa/_mschap.c) need a compiler and the Python headers; without them the
# install goes on and the daemon runs the same code in Python.
headers=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if ! command -v cc >/dev/null || [ ! -f "$headers/Python.h" ]; then
    apt_install gcc python3-dev 2>/dev/null \
        || echo "note: no C compiler or Python headers: the RADIUS wire code runs in pure Python" >&2
fi

spec="$ROOT"
[ -n "${EXTRAS:-}" ] && spec="$ROOT[$EXTRAS]"
# Reinstall only when the packaging or the C wire code changed since the last install into
# this venv (the editable install builds src/radius_contracts/radius/_wire.c in place; without
# a C compiler and the Python headers it goes on without it, and the daemon runs pure Python).
stamp="$VENV/.installed-${EXTRAS:-base}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] \
    || [ "$ROOT/src/radius_contracts/radius/_wire.c" -nt "$stamp" ] \
    || [ "$ROOT/src/radius_contracts/radius/_udp.c" -nt "$stamp" ] \
    || [ "$ROOT/src/radius_contracts/aaa/_mschap.c" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q -e "$spec"
    touch "$stamp"
fi
