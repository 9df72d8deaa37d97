#!/usr/bin/env bash
# The cluster section of the benchmarks: three `herald serve` nodes as one hub on Redis Streams,
# then on NATS JetStream, beside one node alone (embedded transport), measured with
# `herald bench fanout` in one run: subscribers spread over the nodes, updates published round
# robin through them, so that most deliveries cross the shared log from one node to another.
#
#   bash bench/cluster.sh [OUT.md]   # about a minute per engine; prints (or writes) a table
#
# Starts its own redis-server (no persistence) and nats-server -js (its own store directory)
# on free ports, and stops everything it started by PID. Needs the release `herald` (built
# unless HERALD names one), redis-server, nats-server, jq, openssl, curl. compare.sh runs it
# and puts the table in BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${1:-}
# What each scenario asks: subscribers, rate, seconds of updates.
FANOUT=${CLUSTER_FANOUT:-"1000 1000 10"}
LADDER_RATES=${CLUSTER_LADDER_RATES:-"2000 5000 10000"}
LADDER_SUBSCRIBERS=100
LADDER_SECONDS=3

log() { printf '\n== %s\n' "$*" >&2; }

for tool in redis-server nats-server jq openssl curl; do
    command -v "$tool" >/dev/null || { echo "bench/cluster.sh needs $tool" >&2; exit 1; }
done
if [ -z "${HERALD:-}" ]; then
    log "building the release binary"
    cargo build --release -p herald-cli
    HERALD="$ROOT/target/release/herald"
fi

ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_until() { # wait_until WHAT COMMAND...: polls for 30 s
    local what=$1
    shift
    for _ in $(seq 300); do
        "$@" && return 0
        sleep 0.1
    done
    echo "bench/cluster.sh: $what did not happen within 30 s" >&2
    exit 1
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }
# stop PID: TERM, then KILL after 10 s.
stop() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

KEY=$(openssl rand -hex 32)
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt_header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
jwt_claims=$(printf '{"mercure":{"publish":["*"]}}' | b64url)
jwt_signature=$(printf '%s.%s' "$jwt_header" "$jwt_claims" |
    openssl dgst -sha256 -hmac "$KEY" -binary | b64url)
TOKEN="$jwt_header.$jwt_claims.$jwt_signature"

# The engines, each on a server of the run's own.
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
NATS_PORT=$(free_port)
mkdir -p "$WORK/nats"
nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
NATS_PID=$!
wait_until "redis-server listening" listens "$REDIS_PORT"
wait_until "nats-server listening" listens "$NATS_PORT"

declare -A URL=([alone]="" [redis]="redis://127.0.0.1:$REDIS_PORT" [nats]="nats://127.0.0.1:$NATS_PORT")
declare -A NODES=([alone]=1 [redis]=3 [nats]=3)
declare -A NAME=([alone]="one node alone" [redis]="3 nodes on Redis" [nats]="3 nodes on NATS (R1)")
ENGINES=(alone redis nats)
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
COMMANDS=()

# start_nodes ENGINE: starts its nodes (fresh keys or streams), sets HUBS and NODE_PIDS.
start_nodes() {
    local engine=$1 prefix="bench-$1-$RANDOM$RANDOM" n port
    HUBS=()
    NODE_PIDS=()
    for n in $(seq "${NODES[$engine]}"); do
        port=$(free_port)
        local transport=()
        [ -z "${URL[$engine]}" ] || transport=(--transport "${URL[$engine]}" --transport-prefix "$prefix" --node-id "n$n")
        "$HERALD" serve --addr "127.0.0.1:$port" --jwt-key "$KEY" --anonymous \
            --max-connections 0 --publish-rate 0 "${transport[@]}" \
            >>"$WORK/herald-$engine-$n.log" 2>&1 &
        PIDS+=($!)
        NODE_PIDS+=($!)
        HUBS+=("http://127.0.0.1:$port/.well-known/mercure")
        wait_until "node $n on $engine ready" ready "$port"
    done
}
stop_nodes() { local pid; for pid in "${NODE_PIDS[@]}"; do stop "$pid"; done; }

# run ENGINE RESULT ARGS...: one `herald bench fanout` over the engine's nodes.
run() {
    local engine=$1 result=$2
    shift 2
    local args=(bench fanout --json --token "$TOKEN" --hub-pid "${NODE_PIDS[0]}")
    local hub
    for hub in "${HUBS[@]}"; do args+=(--hub "$hub"); done
    args+=("$@")
    COMMANDS+=("herald ${args[*]//$TOKEN/\$TOKEN}")
    log "${NAME[$engine]}: $result"
    local out="$RESULTS/$engine-$result.json" status=0
    "$HERALD" "${args[@]}" >"$out" 2>"$WORK/bench.err" || status=$?
    echo "$status" >"$out.status"
    if [ ! -s "$out" ]; then
        jq -nc --arg error "$(tail -n 1 "$WORK/bench.err")" '{failed: true, error: $error}' >"$out"
    fi
    jq -c 'del(.hub_url)' "$out" >&2
    sleep 1
}
clean_step() {
    [ "$(cat "$1.status")" = 0 ] && jq -e '(.failed | not) and .lost == 0 and .duplicates == 0
        and .publish_failed == 0 and .rate_achieved >= 0.95 * .rate_asked
        and .latency.p99_us <= 100000' "$1" >/dev/null
}

START=$(date +%s)
read -r fan_subs fan_rate fan_secs <<<"$FANOUT"
for engine in "${ENGINES[@]}"; do
    start_nodes "$engine"
    run "$engine" fanout --subscribers "$fan_subs" --rate "$fan_rate" \
        --messages $((fan_rate * fan_secs)) --payload-bytes 64
    best=none
    for rate in $LADDER_RATES; do
        run "$engine" "ladder-$rate" --subscribers "$LADDER_SUBSCRIBERS" --rate "$rate" \
            --messages $((rate * LADDER_SECONDS)) --payload-bytes 64
        if clean_step "$RESULTS/$engine-ladder-$rate.json"; then best=$rate; else break; fi
    done
    if [ "$best" = none ]; then
        jq -nc '{failed: true, error: "no step was clean"}' >"$RESULTS/$engine-ladder.json"
    else
        cp "$RESULTS/$engine-ladder-$best.json" "$RESULTS/$engine-ladder.json"
    fi
    stop_nodes
done
ELAPSED=$(($(date +%s) - START))
stop "$REDIS_PID"
stop "$NATS_PID"

cell() {
    jq -r "def ms: (. / 100 | round) / 10; def n: round | tostring;
        if .failed then \"failed: \" + .error else ($3) end" "$RESULTS/$1-$2.json" 2>/dev/null ||
        echo "n/a"
}
row() {
    printf '| %s |' "$1"
    local engine
    for engine in "${ENGINES[@]}"; do printf ' %s |' "$(cell "$engine" "$2" "$3")"; done
    printf '\n'
}
RATE='"\(.rate_achieved | n) of \(.rate_asked | n)/s"'
DPS='.deliveries_per_second | n'
LAT='"\(.latency.p50_us | ms) / \(.latency.p99_us | ms) / \(.latency.max_us | ms) ms"'
LOST='"\(.lost | n) of \(.deliveries_expected | n), \(.duplicates | n) duplicated"'
CPU='"\(.hub.cpu_percent | round) % (node 1) / \(.generator_cpu_percent | round) %"'
{
    echo "| scenario | ${NAME[alone]} | ${NAME[redis]} | ${NAME[nats]} |"
    echo "|---|---|---|---|"
    title="fan-out $fan_subs subs at $fan_rate/s"
    row "$title: publish rate" fanout "$RATE"
    row "$title: deliveries/s" fanout "$DPS"
    row "$title: latency p50 / p99 / max" fanout "$LAT"
    row "$title: lost" fanout "$LOST"
    row "$title: CPU node / load generator" fanout "$CPU"
    row "ladder $LADDER_SUBSCRIBERS subs: highest clean rate" ladder "$RATE"
    row "ladder: latency p50 / p99 / max there" ladder "$LAT"
    row "ladder: lost there" ladder "$LOST"
    echo
    echo "Subscribers are spread round robin over the nodes and updates published round robin"
    echo "through them (\`--hub\` once per node), so two thirds of the deliveries cross the shared"
    echo "log from one node to another. Ladder steps: $LADDER_RATES/s, $LADDER_SECONDS s each, clean"
    echo "with no loss, no refusal, the rate reached within 5 % and p99 ≤ 100 ms. Engines on this"
    echo "machine: $(redis-server --version | cut -d' ' -f3 | tr -d 'v='), nats-server"
    echo "$(nats-server --version | sed 's/^nats-server: //') (file store, R1); the section took $ELAPSED s."
    echo
    echo '```sh'
    printf '%s\n' "${COMMANDS[@]}" | sed -e "s|--hub-pid [0-9]*|--hub-pid \$PID|" \
        -e "s|127.0.0.1:[0-9]*|127.0.0.1:\$PORT|g" | sort -u
    echo '```'
} >"$WORK/table.md"
if [ -n "$OUT" ]; then cp "$WORK/table.md" "$OUT"; else cat "$WORK/table.md"; fi
