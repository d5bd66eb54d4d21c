#!/usr/bin/env bash
# A real Bolt server for the Neo4j backend's tests: ArcadeDB with its Bolt plugin, from the PyPI
# package `arcadedb-embedded` (which carries its own Java runtime, so nothing else is needed).
# Neo4j itself is not installable on our build machines; ArcadeDB speaks Bolt 4.4 and openCypher,
# which is what neo4rs 0.8 talks.
#
#   scripts/bolt-server.sh install        # once; downloads ~70 MB into target/bolt-server/venv
#   scripts/bolt-server.sh start DIR [OWNER_PID]
#                                         # loopback, free port, data under DIR; prints the URI.
#                                         # With OWNER_PID the server is stopped once that
#                                         # process exits (the test harness has no teardown hook).
#   scripts/bolt-server.sh stop DIR       # stops the server started with that DIR, by its PID
#
# `start` writes DIR/uri, DIR/password and DIR/pid, and returns once the Bolt port answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OUROBOROS_BOLT_VENV:-$ROOT/target/bolt-server/venv}"
PACKAGE="arcadedb-embedded==26.10.2.post1"
DATABASE="ouroboros"

pkg_dir() {
    "$VENV/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("arcadedb_embedded")
print(os.path.dirname(spec.origin))
PY
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_answers() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}

cmd_install() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import arcadedb_embedded' 2>/dev/null; then
        echo "bolt-server: already installed in $VENV"
        return
    fi
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "$PACKAGE"
    echo "bolt-server: installed $PACKAGE in $VENV"
}

cmd_start() {
    local dir="${1:?usage: bolt-server.sh start DIR}"
    if ! [ -x "$VENV/bin/python" ]; then
        echo "bolt-server: not installed; run scripts/bolt-server.sh install" >&2
        exit 1
    fi
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    local pkg bolt http password
    pkg="$(pkg_dir)"
    bolt="$(free_port)"
    http="$(free_port)"
    password="test-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
    # The password file is private to this test server; it is never passed on a command line that
    # the tools under test see.
    (umask 077 && printf '%s' "$password" > "$dir/password")
    # The server writes its own log/ folder into its working directory.
    cd "$dir"
    nohup "$pkg/jre/bin/java" -Xmx4g \
        -cp "$pkg/jars/*" \
        -Darcadedb.server.rootPath="$dir/data" \
        -Darcadedb.server.rootPassword="$password" \
        -Darcadedb.server.defaultDatabases="$DATABASE[root]" \
        -Darcadedb.server.plugins="Bolt:com.arcadedb.bolt.BoltProtocolPlugin" \
        -Darcadedb.server.httpIncomingHost=127.0.0.1 \
        -Darcadedb.server.httpIncomingPort="$http" \
        -Darcadedb.bolt.host=127.0.0.1 \
        -Darcadedb.bolt.port="$bolt" \
        com.arcadedb.server.ArcadeDBServer > "$dir/server.log" 2>&1 &
    local server=$!
    echo "$server" > "$dir/pid"
    if [ -n "${2:-}" ]; then
        local owner="$2"
        nohup bash -c "while kill -0 $owner 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 1; done; kill $server 2>/dev/null" \
            >/dev/null 2>&1 &
    fi
    for _ in $(seq 1 120); do
        # The Bolt port opens before the default database exists; wait for both.
        if port_answers "$bolt" && grep -q "ArcadeDB Server started" "$dir/server.log"; then
            echo "bolt://127.0.0.1:$bolt" > "$dir/uri"
            echo "$DATABASE" > "$dir/database"
            cat "$dir/uri"
            return
        fi
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "bolt-server: the server exited; its log is $dir/server.log" >&2
            tail -n 20 "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "bolt-server: port $bolt did not answer within 60 s; log: $dir/server.log" >&2
    cmd_stop "$dir"
    exit 1
}

cmd_stop() {
    local dir="${1:?usage: bolt-server.sh stop DIR}"
    [ -f "$dir/pid" ] || return 0
    local pid
    pid="$(cat "$dir/pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" "${3:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    *) echo "usage: $0 install | start DIR [OWNER_PID] | stop DIR" >&2; exit 2 ;;
esac
