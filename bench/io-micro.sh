#!/usr/bin/env bash
# Sequential data-path micro-benchmark: one HissDFS cluster (NameServer + 3 DataServers
# + hissdfs-mount) from this tree's dist/, on 127.0.0.1, data under a temp dir on the
# same disk as /tmp. Measures dd write/read through the mount and CLI put/cat.
#   bash bench/io-micro.sh [REPLICATION=3] [MiB=256] [REPS=2]
# STAGES_RUN=1: run bench/io-stages.mjs against the cluster instead (STAGES=put,read,...).
# HOLD=1: start the cluster, print its client config and wait (Ctrl-C stops it).
# SKIP_MOUNT=1 / SKIP_CLI=1 skip those parts; NODE_PROF_{NS,DS,MOUNT,CLI} add node flags.
# LOG=debug (or info) raises every daemon's log level; LOGS_TO=DIR keeps the logs there.
# Needs root (mount, drop_caches). Prints one line per measurement (MB/s, 10^6 bytes).
set -euo pipefail
R=${1:-3}; MIB=${2:-256}; REPS=${3:-2}
REPO=$(cd "$(dirname "$0")/.." && pwd)
CLI="$REPO/dist/src/cli/main.js"; MOUNT="$REPO/dist/src/fuse/main.js"
W=$(mktemp -d "${TMPDIR:-/tmp}/io-micro-XXXXXX")
TIMEF=/tmp/io-micro-time.$$
PIDS=()
cleanup () {
  [ -n "${LOGS_TO:-}" ] && { mkdir -p "$LOGS_TO"; cp "$W"/*.log "$LOGS_TO"/ 2>/dev/null || true; }
  fusermount -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done; [ $alive = 0 ] && break; sleep 0.1; done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$W" "$TIMEF"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port () { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
NSP=$(port)
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
common="\"nameserver.address\":\"127.0.0.1:$NSP\",\"cluster.secret\":\"$SECRET\",\"replication\":$R,\"safemode.extension.ms\":0,\"log.level\":\"${LOG:-warn}\""
mkdir -p "$W/ns" "$W/mnt"
echo "{$common,\"nameserver.root.dir\":\"$W/ns\"}" > "$W/ns.json"
echo "{$common}" > "$W/client.json"
waitline () { for _ in $(seq 1 600); do grep -qi "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout waiting for $2 in $1"; cat "$1"; exit 1; }
node ${NODE_PROF_NS:-} "$CLI" nameserver --config "$W/ns.json" > "$W/ns.log" 2>&1 & PIDS+=($!)
waitline "$W/ns.log" "listening on"
for i in 1 2 3; do
  mkdir -p "$W/ds$i"
  echo "{$common,\"dataserver.root.dir\":\"$W/ds$i\",\"dataserver.address\":\"127.0.0.1:$(port)\"}" > "$W/ds$i.json"
  (cd "$W" && exec node ${NODE_PROF_DS:-} "$CLI" dataserver --config "$W/ds$i.json") > "$W/ds$i.log" 2>&1 & PIDS+=($!)
  waitline "$W/ds$i.log" "listening on"
done
for _ in $(seq 1 200); do node "$CLI" --config "$W/client.json" ping 2>/dev/null | grep -q '3' && break; sleep 0.2; done
(cd "$W" && exec node ${NODE_PROF_MOUNT:-} "$MOUNT" --config "$W/client.json" "$W/mnt") > "$W/mount.log" 2>&1 & PIDS+=($!)
waitline "$W/mount.log" "mounted at"
SRC=/tmp/io-micro-src-$MIB.bin
[ -f "$SRC" ] || head -c $((MIB*1024*1024)) /dev/urandom > "$SRC"
BYTES=$((MIB*1024*1024))
if [ -n "${HOLD:-}" ]; then
  echo "HOLD $W/client.json mount $W/mnt pids ${PIDS[*]}"; while true; do sleep 5 & wait $!; done
fi
if [ -n "${STAGES_RUN:-}" ]; then
  for rep in $(seq 1 "$REPS"); do drop_() { sync; echo 3 > /proc/sys/vm/drop_caches; }; drop_; node ${NODE_PROF_CLI:-} "$REPO/bench/io-stages.mjs" "$W/client.json" "$SRC"; done
  exit 0
fi
mbs () { node -e "console.log(($BYTES/1e6/($2-$1)).toFixed(1))"; }
now () { date +%s.%N; }
# CPU seconds (user+sys) of the daemons: DataServers summed, and the mount.
cpu () { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
DSP="${PIDS[1]} ${PIDS[2]} ${PIDS[3]}"; MP="${PIDS[4]}"
snap () { C_DS=$(cpu $DSP); C_M=$(cpu $MP); }
used () { echo "cpu ds $(node -e "console.log((($(cpu $DSP)-$C_DS)/100).toFixed(2))")s mount $(node -e "console.log((($(cpu $MP)-$C_M)/100).toFixed(2))")s"; }
drop () { sync; echo 3 > /proc/sys/vm/drop_caches; }
for rep in $(seq 1 "$REPS"); do
  if [ -z "${SKIP_MOUNT:-}" ]; then
    rm -f "$W/mnt/f"; drop
    snap; t0=$(now); dd if="$SRC" of="$W/mnt/f" bs=1M conv=fsync status=none; t1=$(now)
    echo "r$R rep$rep mount-write $(mbs $t0 $t1) MB/s  $(used)"
    drop
    snap; t0=$(now); dd if="$W/mnt/f" of=/dev/null bs=1M status=none; t1=$(now)
    echo "r$R rep$rep mount-read  $(mbs $t0 $t1) MB/s  $(used)"
  fi
  if [ -z "${SKIP_CLI:-}" ]; then
    drop
    snap; t0=$(now); /usr/bin/time -o $TIMEF -f "%U %S" node ${NODE_PROF_CLI:-} "$CLI" --config "$W/client.json" put "$SRC" /p >/dev/null; t1=$(now)
    echo "r$R rep$rep cli-put     $(mbs $t0 $t1) MB/s  $(used) cli $(awk '{print $1+$2}' $TIMEF)s"
    drop
    snap; t0=$(now); /usr/bin/time -o $TIMEF -f "%U %S" node ${NODE_PROF_CLI:-} "$CLI" --config "$W/client.json" cat /p > "$W/out"; t1=$(now)
    echo "r$R rep$rep cli-cat     $(mbs $t0 $t1) MB/s  $(used) cli $(awk '{print $1+$2}' $TIMEF)s"
    cmp -s "$W/out" "$SRC" || { echo "cat output differs!"; exit 1; }
    rm -f "$W/out"
  fi
  [ -z "${SKIP_MOUNT:-}" ] && { cmp -s "$W/mnt/f" "$SRC" || { echo "mount file differs!"; exit 1; }; }
done
