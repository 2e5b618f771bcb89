#!/usr/bin/env bash
# bench/run.sh — hotdrop's transfer engine against OpenSSH and rclone, on one machine, at
# loopback and at long-distance round trips.
#
# Starts its own sshd on 127.0.0.1 (logging in the unprivileged hotdrop-test user when run
# as root, as internal/sshdtest does), then uploads the same data with:
#   hotdrop send                      (checksum file sha256, and without checksum files)
#   sftp -b                           (OpenSSH defaults)
#   sftp -b -R 128                    (OpenSSH, 128 requests in flight)
#   sftp -b -c aes128-gcm -R 128      (OpenSSH at its best here)
#   rclone copy --transfers 8         (with its remote md5sum check, and without)
#   cat | ssh 'cat > f'               (the SSH ceiling; tar | ssh 'tar x' for many files)
#   ssh-cat-p8                        (the ceiling of 8 connections: the file in 8 ranges,
#                                      dd | ssh 'dd seek=...' each; 8 tar streams for sets)
# With --rtt, every tool runs again through bench/delayproxy (internal/netdelay), which adds
# that round trip to each connection (RTT 0 = direct). Runs are interleaved (round 1: every
# tool, round 2: every tool, ...) so a busy neighbour hurts all tools alike. For each RTT it
# prints wall time, MB/s, files/s, client and server CPU (seconds, and seconds per GB), the
# ratio of hotdrop's median to each peer's median, and then issue 12's goals, met or not.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--sets big,mid,small] [--tools a,b]
#                     [--rtt 0,50,100,200] [--cut] [--hotdrop BIN] [--base BIN]
#   full sets:   big = 1 x 2 GiB, mid = 2,000 x 1 MiB, small = 20,000 x 4 KiB
#   --quick:     big = 1 x 256 MiB, mid = 200 x 1 MiB, small = 2,000 x 4 KiB
#   --rtt:       round trips in milliseconds (default 0). Through a delay, sftp and
#                sftp-*-R128 send the mid and small sets one file per round trip or worse
#                (hours at full size), so there they run only when --tools names them.
#   --cut:       also measure a resume: hotdrop sends the big file through RTT 100 ms once
#                whole and once with every connection dropped at its middle; the extra bytes
#                on the wire are what the resume sent again.
#   --tools:     any of hotdrop hotdrop-nosum base base-nosum sftp sftp-R128 sftp-aes-R128 rclone-t8
#                rclone-t8-nohash ssh-cat ssh-cat-pN (N parallel connections)
#   --check:     after each run (untimed), compare what the server holds with the source
#   --base BIN:  another hotdrop build (say main's) as the tools base and base-nosum, run
#                interleaved with the rest: a change measured against its base in one run
# Environment (for options a build has, such as striping's):
#   HOTDROP_SEND_ARGS  extra arguments for every hotdrop send, as "--streams 8"
#   HOTDROP_DEST_TOML  extra lines for [destination] in hotdrop's configs, as "streams = 8"
set -euo pipefail

QUICK=0
ROUNDS=3
SETS="big,mid,small"
HOTDROP=""
BASE=""
TOOLS_ARG=""
RTTS="0"
CUT=0
CHECK=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--rounds) ROUNDS="$2"; shift ;;
	--sets) SETS="$2"; shift ;;
	--hotdrop) HOTDROP="$2"; shift ;;
	--base) BASE="$2"; shift ;;
	--tools) TOOLS_ARG="$2"; shift ;;
	--rtt) RTTS="$2"; shift ;;
	--cut) CUT=1 ;;
	--check) CHECK=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
for r in ${RTTS//,/ }; do
	[[ $r =~ ^[0-9]+$ ]] || { echo "bench/run.sh: --rtt takes milliseconds, as 0,50,100,200; got $r" >&2; exit 2; }
done
HOTDROP_SEND_ARGS=${HOTDROP_SEND_ARGS:-}
HOTDROP_DEST_TOML=${HOTDROP_DEST_TOML:-}

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$HOTDROP" ]; then
	HOTDROP="$here/bin/hotdrop"
	(cd "$here" && go build -o bin/hotdrop ./cmd/hotdrop)
fi
(cd "$here" && go build -o bin/delayproxy ./bench/delayproxy)
DELAYPROXY="$here/bin/delayproxy"
for tool in /usr/sbin/sshd ssh sftp ssh-keygen rclone; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is not installed" >&2; exit 2; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/hotdrop-bench.XXXXXX") # TMPDIR=/dev/shm: no disk in the figures
chmod 755 "$W"
SSHD_PID=""
CGROUP=""
PROXY_PIDS=()
cleanup() {
	for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	[ -n "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# --- the server -------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	USER_NAME=hotdrop-test
	id "$USER_NAME" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh "$USER_NAME"
	# sshd refuses locked accounts ("!") even for keys; "*" allows no password login.
	if getent shadow "$USER_NAME" | cut -d: -f2 | grep -q '^!'; then usermod -p '*' "$USER_NAME"; fi
	mkdir -p /run/sshd
else
	USER_NAME=$(id -un)
fi
REMOTE="$W/remote"
mkdir -p "$REMOTE"
[ "$(id -u)" = 0 ] && chown "$USER_NAME" "$REMOTE"
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/id_ed25519"
cp "$W/id_ed25519.pub" "$W/authorized_keys"
chmod 644 "$W/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
AllowUsers $USER_NAME
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -D -e -f "$W/sshd_config" 2>"$W/sshd.log" &
SSHD_PID=$!
# The server's CPU is counted in a cgroup of sshd's own where this user may make one (root):
# it holds every process sshd starts, the short-lived ones too, which the fallback, a
# sampler of /proc every 50 ms, misses (a live hash once ran thousands of `head`s unseen).
for g in "/sys/fs/cgroup/cpuacct/hotdrop-bench.$$" "/sys/fs/cgroup/hotdrop-bench.$$"; do
	[ -d "$(dirname "$g")" ] && [ -w "$(dirname "$g")" ] || continue
	[ "$(dirname "$g")" = /sys/fs/cgroup ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ] && continue
	mkdir "$g" 2>/dev/null || continue
	if echo "$SSHD_PID" >"$g/cgroup.procs" 2>/dev/null; then CGROUP=$g; break; fi
	rmdir "$g"
done
# cg_usage: the CPU seconds sshd and everything it started used so far.
cg_usage() {
	if [ -e "$CGROUP/cpuacct.usage" ]; then
		awk '{ printf "%.3f\n", $1 / 1e9 }' "$CGROUP/cpuacct.usage"
	else
		awk '$1 == "usage_usec" { printf "%.3f\n", $2 / 1e6 }' "$CGROUP/cpu.stat"
	fi
}
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_key.pub")" >"$W/known_hosts"
SSH_OPTS=(-i "$W/id_ed25519" -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes
	-o BatchMode=yes -o GlobalKnownHostsFile=/dev/null)
# rclone's sftp backend, configured from the environment (its port, per RTT, in run_tool).
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=sftp RCLONE_CONFIG_BENCH_HOST=127.0.0.1 \
	RCLONE_CONFIG_BENCH_USER="$USER_NAME" \
	RCLONE_CONFIG_BENCH_KEY_FILE="$W/id_ed25519" RCLONE_CONFIG_BENCH_KNOWN_HOSTS_FILE="$W/known_hosts"

# hotdrop's configs for a port (sshd's, or a delay proxy's): with a sha256 checksum file,
# and without checksum files. HOTDROP_DEST_TOML goes into [destination]; a concurrency or
# names it sets replaces the bench's own.
mkdir -p "$W/hd/root" "$W/hd/requests.d"
hd_configs() { # port
	local ck own="" key
	for key in 'concurrency = 8' 'names = "any"'; do
		grep -qE "^[[:space:]]*${key%% *}[[:space:]]*=" <<<"$HOTDROP_DEST_TOML" || own+="$key"$'\n'
	done
	for ck in sha256 none; do
		cat >"$W/hd/hotdrop-$ck-$1.toml" <<EOF
state_dir = "$W/hd/state"
[watch]
root = "$W/hd/root"
[requests]
files = ["$W/hd/requests.d/*.toml"]
[destination]
url = "sftp://$USER_NAME@127.0.0.1:$1$REMOTE"
identity_file = "$W/id_ed25519"
known_hosts = "$W/known_hosts"
checksum = "$ck"
$own$HOTDROP_DEST_TOML
[status]
listen = ""
EOF
	done
}

# start_proxy RTT_MS [delayproxy flags]: a delay proxy in front of sshd. Sets TPORT (the
# port the tools dial) and pins sshd's host key for it.
start_proxy() {
	PROXY_OUT="$W/proxy.$1.$RANDOM"
	"$DELAYPROXY" -rtt "$1ms" -to "127.0.0.1:$PORT" "${@:2}" >"$PROXY_OUT" 2>&1 &
	PROXY_PID=$!
	PROXY_PIDS+=("$PROXY_PID")
	for _ in $(seq 200); do [ -s "$PROXY_OUT" ] && break; sleep 0.05; done
	TPORT=$(head -1 "$PROXY_OUT" | sed 's/.*://')
	[[ $TPORT =~ ^[0-9]+$ ]] || { echo "delay proxy did not start: $(cat "$PROXY_OUT")" >&2; exit 1; }
	echo "[127.0.0.1]:$TPORT $(cut -d' ' -f1,2 "$W/host_key.pub")" >>"$W/known_hosts"
	hd_configs "$TPORT"
}
# stop_proxy: sets PROXY_UP (bytes it carried to sshd), PROXY_CUTS and PROXY_CPU (seconds).
stop_proxy() {
	PROXY_CPU=$(awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$PROXY_PID/stat")
	kill -TERM "$PROXY_PID"
	wait "$PROXY_PID" || true
	local p left=()
	for p in "${PROXY_PIDS[@]}"; do [ "$p" = "$PROXY_PID" ] || left+=("$p"); done
	PROXY_PIDS=("${left[@]}")
	local last
	last=$(tail -1 "$PROXY_OUT")
	PROXY_UP=$(sed -n 's/.*up=\([0-9]*\).*/\1/p' <<<"$last")
	PROXY_CUTS=$(sed -n 's/.*cuts=\([0-9]*\).*/\1/p' <<<"$last")
	[ -n "$PROXY_UP" ] || { echo "delay proxy gave no counts: $last" >&2; exit 1; }
}

# --- the data ---------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then BIG_MIB=256 MID_N=200 SMALL_N=2000; else BIG_MIB=2048 MID_N=2000 SMALL_N=20000; fi
mkdir -p "$W/data"
make_set() { # name count size-bytes
	local d="$W/data/$1"
	mkdir -p "$d"
	if [ "$2" = 1 ]; then
		head -c "$3" /dev/urandom >"$d/file.bin"
	else
		head -c $(($2 * $3)) /dev/urandom | (cd "$d" && split -b "$3" -a 5 -d - f)
	fi
}
declare -A SET_BYTES SET_FILES
for s in ${SETS//,/ }; do
	case $s in
	big) make_set big 1 $((BIG_MIB << 20)); SET_FILES[big]=1; SET_BYTES[big]=$((BIG_MIB << 20)) ;;
	mid) make_set mid "$MID_N" $((1 << 20)); SET_FILES[mid]=$MID_N; SET_BYTES[mid]=$((MID_N << 20)) ;;
	small) make_set small "$SMALL_N" 4096; SET_FILES[small]=$SMALL_N; SET_BYTES[small]=$((SMALL_N * 4096)) ;;
	*) echo "unknown set $s" >&2; exit 2 ;;
	esac
done

# --- the tools: each uploads $W/data/$set into $REMOTE/$run, dialling port $TPORT --------
run_tool() { # tool set run
	local tool=$1 set=$2 run=$3 src="$W/data/$2"
	case $tool in
	hotdrop)
		# shellcheck disable=SC2086 # HOTDROP_SEND_ARGS is a list of words
		"$HOTDROP" send "$src" --to "$run" --config "$W/hd/hotdrop-sha256-$TPORT.toml" $HOTDROP_SEND_ARGS >/dev/null ;;
	hotdrop-nosum)
		# shellcheck disable=SC2086
		"$HOTDROP" send "$src" --to "$run" --config "$W/hd/hotdrop-none-$TPORT.toml" $HOTDROP_SEND_ARGS >/dev/null ;;
	base)
		# shellcheck disable=SC2086
		"$BASE" send "$src" --to "$run" --config "$W/hd/hotdrop-sha256-$TPORT.toml" $HOTDROP_SEND_ARGS >/dev/null ;;
	base-nosum)
		# shellcheck disable=SC2086
		"$BASE" send "$src" --to "$run" --config "$W/hd/hotdrop-none-$TPORT.toml" $HOTDROP_SEND_ARGS >/dev/null ;;
	sftp | sftp-R128 | sftp-aes-R128)
		local opts=()
		case $tool in
		sftp-R128) opts=(-R 128) ;;
		sftp-aes-R128) opts=(-c aes128-gcm@openssh.com -R 128) ;;
		esac
		printf 'mkdir %s\nput -r %s %s/\n' "$REMOTE/$run" "$src" "$REMOTE/$run" >"$W/batch.$run"
		sftp -q "${SSH_OPTS[@]}" "${opts[@]}" -P "$TPORT" -b "$W/batch.$run" "$USER_NAME@127.0.0.1" >/dev/null ;;
	rclone-t8)
		RCLONE_CONFIG_BENCH_PORT=$TPORT rclone copy --transfers 8 "$src" "bench:$REMOTE/$run/$set" 2>>"$W/rclone.log" ;;
	rclone-t8-nohash)
		RCLONE_CONFIG_BENCH_PORT=$TPORT rclone copy --transfers 8 --sftp-disable-hashcheck "$src" \
			"bench:$REMOTE/$run/$set" 2>>"$W/rclone.log" ;;
	ssh-cat)
		if [ "$set" = big ]; then
			cat "$src/file.bin" | ssh "${SSH_OPTS[@]}" -p "$TPORT" "$USER_NAME@127.0.0.1" \
				"mkdir -p '$REMOTE/$run' && cat > '$REMOTE/$run/file.bin'"
		else
			tar -C "$W/data" -cf - "$set" | ssh "${SSH_OPTS[@]}" -p "$TPORT" "$USER_NAME@127.0.0.1" \
				"mkdir -p '$REMOTE/$run' && tar -C '$REMOTE/$run' -xf -"
		fi ;;
	ssh-cat-p[1-9]*) cat_parallel "${tool#ssh-cat-p}" "$set" "$run" ;;
	*) echo "unknown tool $tool" >&2; return 2 ;;
	esac
}

# cat_parallel N set run: the ceiling of N SSH connections. The big file goes in N ranges
# of whole MiB, each read with dd and written in place by dd on the server; a set of files
# goes as N tar streams of every Nth file.
cat_parallel() {
	local n=$1 set=$2 run=$3 src="$W/data/$2" pids=() i rc=0
	if [ "$set" = big ]; then
		local f="$src/file.bin" size chunk off len
		size=$(stat -c %s "$f")
		chunk=$((((size + n - 1) / n + 1048575) / 1048576 * 1048576))
		for ((i = 0; i < n; i++)); do
			off=$((i * chunk))
			[ "$off" -lt "$size" ] || break
			len=$((size - off < chunk ? size - off : chunk))
			dd if="$f" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none |
				ssh "${SSH_OPTS[@]}" -p "$TPORT" "$USER_NAME@127.0.0.1" "mkdir -p '$REMOTE/$run' &&
					dd of='$REMOTE/$run/file.bin' bs=1M oflag=seek_bytes seek=$off conv=notrunc status=none" &
			pids+=($!)
		done
	else
		(cd "$src" && ls) >"$W/list.$run"
		for ((i = 0; i < n; i++)); do
			awk -v n="$n" -v i="$i" 'NR % n == i' "$W/list.$run" >"$W/list.$run.$i"
			tar -C "$src" -cf - -T "$W/list.$run.$i" | ssh "${SSH_OPTS[@]}" -p "$TPORT" "$USER_NAME@127.0.0.1" \
				"mkdir -p '$REMOTE/$run/$set' && tar -C '$REMOTE/$run/$set' -xf -" &
			pids+=($!)
		done
	fi
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	return $rc
}

TOOLS=(hotdrop hotdrop-nosum sftp sftp-R128 sftp-aes-R128 rclone-t8 rclone-t8-nohash ssh-cat ssh-cat-p8)
[ -n "$BASE" ] && TOOLS=(hotdrop base hotdrop-nosum base-nosum "${TOOLS[@]:2}")
[ -n "$TOOLS_ARG" ] && IFS=, read -r -a TOOLS <<<"$TOOLS_ARG"
# skip_tool tool set rtt: sftp sends many files one at a time, a round trip or more each;
# through a delay that is hours at full size, so it runs there only when asked for.
skip_tool() {
	[ -z "$TOOLS_ARG" ] && [ "$3" != 0 ] && [ "$2" != big ] && [[ $1 == sftp* ]]
}
cat >"$W/srvcpu.py" <<'PY'
import os, signal, sys, time
root, out, seen, stop = int(sys.argv[1]), sys.argv[2], {}, False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
tck = os.sysconf("SC_CLK_TCK")
while True:
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))
            except (OSError, IndexError):
                pass
    for pid, (ppid, ticks) in procs.items():
        p, depth = ppid, 0
        while p not in (0, 1, root) and p in procs and depth < 8:
            p, depth = procs[p][0], depth + 1
        if p == root and pid != root:
            seen[pid] = ticks
    if stop:
        break
    time.sleep(0.05)
open(out, "w").write("%.2f\n" % (sum(seen.values()) / tck))
PY

# one_run tool set run: runs it under /usr/bin/time with the server sampler; sets WALL, CLI, SRV.
one_run() {
	sync
	local sampler="" cg0=""
	if [ -n "$CGROUP" ]; then
		cg0=$(cg_usage)
	else
		python3 "$W/srvcpu.py" "$SSHD_PID" "$W/srv" &
		sampler=$!
	fi
	/usr/bin/time -f '%e %U %S' -o "$W/time" bash -c "$(declare -f run_tool cat_parallel)
		$(declare -p W REMOTE HOTDROP BASE SSH_OPTS TPORT USER_NAME HOTDROP_SEND_ARGS); run_tool $1 $2 $3" \
		|| { echo "run failed: $1 $2 ($3)" >&2; cat "$W/sshd.log" "$W/rclone.log" 2>/dev/null | tail -5 >&2; exit 1; }
	if [ -n "$CGROUP" ]; then
		# A session's processes end a moment after the client's.
		for _ in $(seq 100); do [ -z "$(pgrep -P "$SSHD_PID")" ] && break; sleep 0.02; done
		awk -v a="$cg0" -v b="$(cg_usage)" 'BEGIN { printf "%.2f\n", b - a }' >"$W/srv"
	else
		kill -TERM "$sampler"
		wait "$sampler" || true
	fi
	local usr sys
	read -r WALL usr sys <"$W/time"
	CLI=$(awk "BEGIN{print $usr + $sys}")
	SRV=$(cat "$W/srv")
}

# check_copy tool set run: every source file is on the server, byte for byte. The big file
# lands in run/ or run/big/ depending on the tool; sets in run/SET/.
check_copy() {
	local dst="$REMOTE/$3/$2"
	[ "$2" = big ] && [ ! -d "$dst" ] && dst="$REMOTE/$3"
	(cd "$W/data/$2" && sha256sum -- *) | (cd "$dst" && sha256sum -c --quiet -) \
		|| { echo "bench/run.sh: $1 left a different copy of $2 in $dst" >&2; exit 1; }
}

RESULTS="$W/results"
: >"$RESULTS" >"$W/proxycpu"
n=0
for rtt in ${RTTS//,/ }; do
	if [ "$rtt" = 0 ]; then
		TPORT=$PORT
		hd_configs "$PORT"
	else
		start_proxy "$rtt"
	fi
	for round in $(seq "$ROUNDS"); do
		for s in ${SETS//,/ }; do
			for tool in "${TOOLS[@]}"; do
				skip_tool "$tool" "$s" "$rtt" && continue
				n=$((n + 1))
				one_run "$tool" "$s" "r$n"
				echo "  RTT $rtt ms, $s, $tool, round $round: $WALL s" >&2
				echo "$rtt $s $tool $round $WALL $CLI $SRV ${SET_BYTES[$s]} ${SET_FILES[$s]}" >>"$RESULTS"
				[ "$CHECK" = 0 ] || check_copy "$tool" "$s" "r$n"
				rm -rf "${REMOTE:?}/r$n"
			done
		done
	done
	if [ "$rtt" != 0 ]; then
		stop_proxy
		echo "$rtt $PROXY_CPU" >>"$W/proxycpu"
	fi
done

# --- resume after a cut: the big file at RTT 100 ms, whole, then with a drop in its middle -----
CUT_LINE=""
if [ "$CUT" = 1 ]; then
	[ -n "${SET_BYTES[big]:-}" ] || { echo "bench/run.sh: --cut needs the big set" >&2; exit 2; }
	size=${SET_BYTES[big]}
	start_proxy 100
	n=$((n + 1))
	one_run hotdrop big "r$n"
	wall_whole=$WALL
	stop_proxy
	up_whole=$PROXY_UP
	rm -rf "${REMOTE:?}/r$n"
	start_proxy 100 -cut-after $((size / 2))
	n=$((n + 1))
	# The run's own lines say how it resumed; send retries a dropped link by itself.
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$HOTDROP" send "$W/data/big" --to "r$n" --config "$W/hd/hotdrop-sha256-$TPORT.toml" $HOTDROP_SEND_ARGS >"$W/cut.out" 2>&1 \
		|| { echo "the send with a cut failed:" >&2; cat "$W/cut.out" >&2; exit 1; }
	wall_cut=$(awk "BEGIN{print $(date +%s.%N) - $t0}")
	stop_proxy
	cmp "$W/data/big/file.bin" "$REMOTE/r$n/big/file.bin" >&2 || { echo "bench/run.sh: the file sent with a cut differs:" >&2; cat "$W/cut.out" >&2; exit 1; }
	rm -rf "${REMOTE:?}/r$n"
	echo >&2
	grep -iE 'retry|resum' "$W/cut.out" | sed 's/^/  hotdrop: /' >&2 || true
	CUT_LINE=$(awk -v s="$size" -v a="$up_whole" -v b="$PROXY_UP" -v c="$PROXY_CUTS" -v w1="$wall_whole" -v w2="$wall_cut" 'BEGIN {
		printf "%d %d %d %d %.2f %.2f %.3f", s, a, b, c, w1, w2, (b - a) / s * 100 }')
	[ "$PROXY_CUTS" = 1 ] || echo "bench/run.sh: the proxy cut $PROXY_CUTS times, not once" >&2
fi

# --- the report -------------------------------------------------------------------------
echo
echo "hotdrop bench: $(nproc) cores (load average now: $(cut -d' ' -f1-3 /proc/loadavg)), $(ssh -V 2>&1 | cut -d, -f1), rclone $(rclone version 2>/dev/null | head -1 | awk '{print $2}'), $ROUNDS interleaved rounds"
[ "$QUICK" = 1 ] && echo "quick sets: big = $BIG_MIB MiB, mid = $MID_N x 1 MiB, small = $SMALL_N x 4 KiB"
[ -n "$HOTDROP_SEND_ARGS$HOTDROP_DEST_TOML" ] && echo "hotdrop send with: $HOTDROP_SEND_ARGS ${HOTDROP_DEST_TOML//$'\n'/; }"
echo "(medians; CPU: client = the tool and its ssh, server = sshd and its sessions, $([ -n "$CGROUP" ] && echo "counted by a cgroup" || echo "sampled from /proc: short-lived processes are missed"); the delay proxy is neither)"
awk -v quick="$QUICK" -v cut="$CUT_LINE" -v proxycpu="$W/proxycpu" '
function med(arr, key, cnt,   i, v, m, tmp) {
  for (i = 1; i <= cnt; i++) tmp[i] = arr[key, i]
  for (i = 2; i <= cnt; i++) { v = tmp[i]; m = i - 1; while (m > 0 && tmp[m] > v) { tmp[m + 1] = tmp[m]; m-- } tmp[m + 1] = v }
  return (cnt % 2) ? tmp[(cnt + 1) / 2] : (tmp[cnt / 2] + tmp[cnt / 2 + 1]) / 2
}
function k(r, s, t) { return r " " s " " t }
function mbps(r, s, t) { return bytes[r, s] / mw[k(r, s, t)] / 1e6 }
function has(r, s, t) { return (k(r, s, t) in mw) }
function ratio(peer, hd, r, s) { return (has(r, s, peer) && has(r, s, hd)) ? sprintf("%.2f", mw[k(r, s, peer)] / mw[k(r, s, hd)]) : "-" }
function goal(what, got, want, unit, atleast) {
  printf "  %-62s %9.2f%s  want %s %.2f%s  %s\n", what, got, unit, atleast ? ">=" : "<=", want, unit,
    (atleast ? got >= want : got <= want) ? "met" : "NOT met"
}
{ key = k($1, $2, $3); n[key]++; w[key, n[key]] = $5; c[key, n[key]] = $6; s[key, n[key]] = $7
  bytes[$1, $2] = $8; files[$1, $2] = $9
  if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
  if (!($1 in rseen)) { rseen[$1] = 1; rtts[++nr] = $1 } }
END {
  while ((getline line < proxycpu) > 0) { split(line, f, " "); pcpu[f[1]] = f[2] }
  for (i = 1; i <= nk; i++) { key = order[i]; mw[key] = med(w, key, n[key]); mc[key] = med(c, key, n[key]); ms[key] = med(s, key, n[key]) }
  for (j = 1; j <= nr; j++) {
    r = rtts[j]
    printf "\nRTT %s ms%s\n", r, r == 0 ? " (direct to sshd)" : sprintf(" (through the delay proxy; it used %.1f s of CPU)", pcpu[r])
    printf "%-6s %-17s %8s %8s %8s %7s %7s %8s %8s %9s %8s\n", "set", "tool", "wall s", "MB/s", "files/s",
      "cli s", "srv s", "cli s/GB", "srv s/GB", "hotdrop x", "nosum x"
    for (i = 1; i <= nk; i++) {
      key = order[i]; split(key, p, " ")
      if (p[1] != r) continue
      gb = bytes[r, p[2]] / 1e9
      printf "%-6s %-17s %8.2f %8.2f %8s %7.2f %7.2f %8.2f %8.2f %9s %8s\n", p[2], p[3], mw[key], mbps(r, p[2], p[3]),
        files[r, p[2]] == 1 ? "-" : sprintf("%.0f", files[r, p[2]] / mw[key]), mc[key], ms[key], mc[key] / gb, ms[key] / gb, ratio(p[3], "hotdrop", r, p[2]), ratio(p[3], "hotdrop-nosum", r, p[2])
    }
  }
  print "hotdrop x, nosum x = the peer'"'"'s wall time / hotdrop'"'"'s (with checksum files / without); above 1: hotdrop is faster"

  print "\nissue 12 goals (only those this run measured):"
  if (has(100, "big", "hotdrop") && has(100, "big", "sftp")) goal("RTT 100, big file: hotdrop vs OpenSSH sftp", mw[k(100, "big", "sftp")] / mw[k(100, "big", "hotdrop")], 8, "x", 1)
  for (i = 1; i <= nk; i++) { split(order[i], p, " ")
    if (p[1] == 100 && p[2] == "big" && p[3] ~ /^ssh-cat-p/ && has(100, "big", "hotdrop"))
      goal("RTT 100, big file: hotdrop vs " p[3] " (MB/s share)", mbps(100, "big", "hotdrop") / mbps(100, "big", p[3]), 0.6, "x", 1) }
  split("mid small", sets, " ")
  for (i = 1; i <= 2; i++) {
    if (has(100, sets[i], "hotdrop") && has(100, sets[i], "rclone-t8"))
      goal("RTT 100, " sets[i] ": hotdrop vs rclone-t8", mw[k(100, sets[i], "rclone-t8")] / mw[k(100, sets[i], "hotdrop")], 3, "x", 1)
    if (has(100, sets[i], "hotdrop-nosum") && has(100, sets[i], "rclone-t8-nohash"))
      goal("RTT 100, " sets[i] ": hotdrop-nosum vs rclone-t8-nohash", mw[k(100, sets[i], "rclone-t8-nohash")] / mw[k(100, sets[i], "hotdrop-nosum")], 3, "x", 1)
  }
  best = 0
  split("sftp sftp-R128 sftp-aes-R128", peers, " ")
  for (i = 1; i <= 3; i++) if (has(0, "big", peers[i]) && mbps(0, "big", peers[i]) > best) { best = mbps(0, "big", peers[i]); bestp = peers[i] }
  if (best > 0 && has(0, "big", "hotdrop")) goal("RTT 0, big file: hotdrop vs the best sftp (" bestp ")", mbps(0, "big", "hotdrop") / best, 0.95, "x", 1)
  note = quick ? " (a full-size goal)" : ""
  if (has(0, "mid", "hotdrop")) goal("RTT 0, mid: hotdrop MB/s" note, mbps(0, "mid", "hotdrop"), 211, "", 1)
  if (has(0, "small", "hotdrop")) goal("RTT 0, small: hotdrop files/s" note, files[0, "small"] / mw[k(0, "small", "hotdrop")], 800, "", 1)
  if (has(0, "small", "hotdrop-nosum")) goal("RTT 0, small: hotdrop-nosum files/s" note, files[0, "small"] / mw[k(0, "small", "hotdrop-nosum")], 1490, "", 1)
  if (cut != "") {
    split(cut, q, " ")
    printf "\nresume after a cut at RTT 100 ms: %.0f MiB file, every connection dropped after %.0f MiB went to sshd (%d cut)\n", q[1] / 1048576, q[1] / 2 / 1048576, q[4]
    printf "  on the wire to sshd: %d bytes whole (%.2f s), %d bytes with the cut (%.2f s): %.1f MiB sent again\n", q[2], q[5], q[3], q[6], (q[3] - q[2]) / 1048576
    goal("RTT 100, resume after a cut: share of the file sent again", q[7], 2, " %", 0)
  }
}' "$RESULTS"
