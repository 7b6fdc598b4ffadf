#!/usr/bin/env bash
# HAProxy and lb side by side on loopback, in front of nginx (connection rate) and an
# iperf3 server (one stream's throughput), against the same servers reached directly.
#
# Needs haproxy, nginx, wrk and iperf3; this script installs nothing. On Debian/Ubuntu:
#
#   apt-get install haproxy nginx wrk iperf3
#
# Run from the repository root:  bash benches/compare-haproxy.sh
#
# It builds examples/relayd.rs in release mode (cargo build --release --example relayd),
# starts nginx, an iperf3 server, HAProxy (mode tcp, nbthread 2) and lb's relayd (a
# runtime with one worker per core; two relays: one to nginx, one to iperf3), all on
# 127.0.0.1, and measures in rounds, each round trying direct, HAProxy and lb in turn,
# so that background load falls on all three alike:
#
# - connections: `wrk -t1 -c32 -d$SECS -H 'Connection: close'` (a new connection per
#   request), requests per second;
# - throughput: `iperf3 -t $SECS`, one stream, Gbit/s at the receiver.
#
# It prints every measurement, then the median of each and its ratio to direct, and the
# CPU time the proxy process spent per connection during the wrk run (user and system,
# all threads, from /proc; 0 for direct): the figure least moved by other load.
# Settings (environment): ROUNDS (3), SECS (5, per measurement), BASE_PORT (18080; the
# script uses BASE_PORT..BASE_PORT+5 and stops if one is taken), RELAYD (a relayd
# binary to use instead of building one: to compare two builds of lb). Every process it
# starts is stopped when it exits, by process id. Nothing leaves loopback.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
BASE_PORT=${BASE_PORT:-18080}

missing=()
tools=(haproxy nginx wrk iperf3)
[[ -n ${RELAYD:-} ]] || tools+=(cargo)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "compare-haproxy: missing: ${missing[*]}" >&2
    echo "compare-haproxy: install them first (Debian/Ubuntu: apt-get install haproxy nginx wrk iperf3); this script installs nothing" >&2
    exit 2
fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]?$ && $SECS =~ ^[1-9][0-9]?$ && $BASE_PORT =~ ^[0-9]+$ ]] \
    || ((BASE_PORT < 1024 || BASE_PORT > 65530)); then
    echo "compare-haproxy: ROUNDS and SECS must be 1-99, BASE_PORT 1024-65530" >&2
    exit 2
fi

NGINX_PORT=$BASE_PORT
HAPROXY_HTTP=$((BASE_PORT + 1))
LB_HTTP=$((BASE_PORT + 2))
IPERF_PORT=$((BASE_PORT + 3))
HAPROXY_IPERF=$((BASE_PORT + 4))
LB_IPERF=$((BASE_PORT + 5))
for port in $(seq "$BASE_PORT" $((BASE_PORT + 5))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "compare-haproxy: port $port on 127.0.0.1 is taken; set BASE_PORT" >&2
        exit 2
    fi
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/lb-compare.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${RELAYD:-} ]]; then
    relayd=$RELAYD
    [[ -x $relayd ]] || { echo "compare-haproxy: RELAYD=$relayd is not an executable" >&2; exit 2; }
else
    echo "building examples/relayd.rs (release)..." >&2
    (cd "$root" && cargo build --release --quiet --example relayd)
    relayd="$root/target/release/examples/relayd"
fi

mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF

cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode tcp
    timeout connect 3s
    timeout client 600s
    timeout server 600s
listen http
    bind 127.0.0.1:$HAPROXY_HTTP
    server nginx 127.0.0.1:$NGINX_PORT
listen iperf
    bind 127.0.0.1:$HAPROXY_IPERF
    server iperf 127.0.0.1:$IPERF_PORT
EOF

cat >"$work/relayd.conf" <<EOF
table <nginx> { 127.0.0.1 }
table <iperf> { 127.0.0.1 }
relay "http" {
	listen on 127.0.0.1 port $LB_HTTP
	forward to <nginx> port $NGINX_PORT
}
relay "iperf" {
	listen on 127.0.0.1 port $LB_IPERF
	forward to <iperf> port $IPERF_PORT
}
EOF

nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
pids+=($!)
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >"$work/iperf3.log" 2>&1 &
pids+=($!)
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!
"$relayd" -f "$work/relayd.conf" >"$work/relayd.log" 2>&1 &
pids+=($!)
lb_pid=$!

# Waits (at most 10 s) until something listens on 127.0.0.1:$1.
wait_port() {
    local tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        tries=$((tries + 1))
        if ((tries > 100)); then
            echo "compare-haproxy: nothing listens on port $1 after 10 s; logs in $work:" >&2
            tail -n 5 "$work"/*.log "$work"/nginx/logs/error.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}
# HAProxy and relayd open both their ports at once, so their HTTP port stands for both
# (a probe through to iperf3 would count as a failed test there).
for port in "$NGINX_PORT" "$IPERF_PORT" "$HAPROXY_HTTP" "$LB_HTTP"; do
    wait_port "$port"
done

# CPU time of process $1 so far, in clock ticks (user and system, every thread).
ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# "requests/s CPU-us-per-request" through port $1, one new connection per request; the
# CPU is the proxy's, process $2 (none for direct).
rate() {
    local before=0 after=0 out
    [[ -z $2 ]] || before=$(ticks "$2")
    out=$(wrk -t1 -c32 -d"${SECS}s" -H 'Connection: close' "http://127.0.0.1:$1/")
    [[ -z $2 ]] || after=$(ticks "$2")
    awk -v cpu=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { r = $2 }
        END { if (n > 0 && r > 0) printf "%s %.1f\n", r, cpu / hz * 1e6 / n }' <<<"$out"
}

# Gbit/s of one iperf3 stream through port $1, at the receiver.
gbits() {
    iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -f g \
        | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") print $(i - 1) }'
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
    for target in direct haproxy lb; do
        case $target in
            direct) http=$NGINX_PORT iperf=$IPERF_PORT pid= ;;
            haproxy) http=$HAPROXY_HTTP iperf=$HAPROXY_IPERF pid=$haproxy_pid ;;
            lb) http=$LB_HTTP iperf=$LB_IPERF pid=$lb_pid ;;
        esac
        read -r r cpu <<<"$(rate "$http" "$pid")"
        g=$(gbits "$iperf")
        if [[ -z $r || -z $cpu || -z $g ]]; then
            echo "compare-haproxy: no figure from $target (wrk: '$r', iperf3: '$g')" >&2
            exit 1
        fi
        results[$target.conn]+="$r "
        results[$target.cpu]+="$cpu "
        results[$target.gbit]+="$g "
        printf 'round %d %-8s %10.0f conn/s (proxy CPU %5.1f us/conn) %7.2f Gbit/s\n' \
            "$round" "$target" "$r" "$cpu" "$g"
    done
done

median() {
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

direct_conn=$(median "${results[direct.conn]}")
direct_gbit=$(median "${results[direct.gbit]}")
echo
echo "medians of $ROUNDS rounds of ${SECS}s (ratios to direct):"
for target in direct haproxy lb; do
    c=$(median "${results[$target.conn]}")
    u=$(median "${results[$target.cpu]}")
    g=$(median "${results[$target.gbit]}")
    awk -v t="$target" -v c="$c" -v u="$u" -v g="$g" -v dc="$direct_conn" -v dg="$direct_gbit" \
        'BEGIN { printf "%-8s connections %8.0f conn/s (%.2fx), proxy CPU %5.1f us/conn   throughput %6.2f Gbit/s (%.2fx)\n", t, c, c / dc, u, g, g / dg }'
done
