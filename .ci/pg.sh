# A throwaway PostgreSQL server for the test suite; sourced by .ci/dev (bash, set -euo pipefail).
#
# The repository, migration and sync suites run on SQLite and on PostgreSQL. They find the server
# through POSITION_SYNC_TEST_PG_URL: a URL of a role that may CREATE DATABASE (each test gets a
# fresh database). When that variable is already set (a developer's own server) nothing happens
# here. Otherwise `pg_test_server_start` finds Debian's PostgreSQL (installing the `postgresql`
# package when running as root with apt-get), creates a cluster under a private temporary folder,
# starts it on 127.0.0.1 at a free port plus a socket in that folder, creates a login role with a
# random password, exports the URL and registers `pg_test_server_stop` to run at exit.
# Without PostgreSQL the PostgreSQL tests skip with a reason; with CI=true they must run, so the
# missing server is an error here already.

PG_TEST_DIR=""
PG_TEST_BIN=""

_pg_bin_dir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir; return 0
    fi
    return 1
}

_pg_as_owner() {
    # The server refuses to run as root: as root, run it as the `postgres` user Debian creates.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_pg_missing() {
    if [ "${CI:-}" = "true" ]; then
        echo "PostgreSQL is needed in CI but $1" >&2
        exit 2
    fi
    echo "note: $1; the PostgreSQL tests will be skipped (set POSITION_SYNC_TEST_PG_URL to use a server)" >&2
}

pg_test_server_start() {
    if [ -n "${POSITION_SYNC_TEST_PG_URL:-}" ]; then
        echo "== postgresql: using POSITION_SYNC_TEST_PG_URL from the environment"
        return 0
    fi
    if ! PG_TEST_BIN=$(_pg_bin_dir); then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== postgresql: installing Debian's postgresql package"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        fi
        if ! PG_TEST_BIN=$(_pg_bin_dir); then
            _pg_missing "no PostgreSQL server binaries were found (apt-get install postgresql)"
            return 0
        fi
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        _pg_missing "there is no 'postgres' user to run the server as"
        return 0
    fi

    PG_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/position-sync-pg.XXXXXX")
    trap pg_test_server_stop EXIT
    chmod 0700 "$PG_TEST_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_TEST_DIR"; fi
    local port password url
    port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
    _pg_as_owner "$PG_TEST_BIN/initdb" -D "$PG_TEST_DIR/data" -U postgres --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >"$PG_TEST_DIR/initdb.log" 2>&1 \
        || { cat "$PG_TEST_DIR/initdb.log" >&2; exit 2; }
    # A throwaway cluster: durability settings off (they cost seconds per CREATE DATABASE), and
    # no autovacuum: its worker runs as the superuser, and a test database's DROP ... WITH (FORCE)
    # by the test role fails while one is in it (seen once in a CI run).
    _pg_as_owner "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
        -o "-p $port -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c autovacuum=off" \
        start >/dev/null || { cat "$PG_TEST_DIR/server.log" >&2; exit 2; }
    # Over the socket (trust) as the superuser: a login role for the tests that authenticates with
    # a password over TCP, as a workstation would.
    _pg_as_owner "$PG_TEST_BIN/psql" -q -v ON_ERROR_STOP=1 -h "$PG_TEST_DIR" -p "$port" -U postgres \
        -d postgres -c "CREATE ROLE position_sync_test LOGIN CREATEDB CREATEROLE PASSWORD '$password'" \
        >/dev/null
    url="postgresql+psycopg://position_sync_test:$password@127.0.0.1:$port/postgres"
    export POSITION_SYNC_TEST_PG_URL="$url"
    echo "== postgresql: $("$PG_TEST_BIN/postgres" --version) on 127.0.0.1:$port ($PG_TEST_DIR)"
}

pg_test_server_stop() {
    if [ -n "$PG_TEST_DIR" ] && [ -d "$PG_TEST_DIR/data" ]; then
        _pg_as_owner "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_TEST_DIR" ]; then rm -rf "$PG_TEST_DIR"; fi
    PG_TEST_DIR=""
}
