#!/usr/bin/env bash
# bench/run.sh — hotdrop's transfer engine against OpenSSH and rclone, on one machine.
#
# Starts its own sshd on 127.0.0.1 (logging in the unprivileged hotdrop-test user when run
# as root, as internal/sshdtest does), then uploads the same data with:
#   hotdrop send                      (checksum file sha256, and without checksum files)
#   sftp -b                           (OpenSSH defaults)
#   sftp -b -c aes128-gcm -R 128      (OpenSSH at its best here)
#   rclone copy --transfers 8         (with its remote md5sum check, and without)
#   cat | ssh 'cat > f'               (the SSH ceiling; tar | ssh 'tar x' for many files)
# Runs are interleaved (round 1: every tool, round 2: every tool, ...) so a busy neighbour
# hurts all tools alike. For each it prints wall time, MB/s, files/s, client and server CPU
# seconds, and the ratio of hotdrop's median to each peer's median.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--sets big,mid,small] [--tools a,b] [--hotdrop BIN]
#   full sets:   big = 1 x 2 GiB, mid = 2,000 x 1 MiB, small = 20,000 x 4 KiB
#   --quick:     big = 1 x 256 MiB, mid = 200 x 1 MiB, small = 2,000 x 4 KiB
set -euo pipefail

QUICK=0
ROUNDS=3
SETS="big,mid,small"
HOTDROP=""
TOOLS_ARG=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--rounds) ROUNDS="$2"; shift ;;
	--sets) SETS="$2"; shift ;;
	--hotdrop) HOTDROP="$2"; shift ;;
	--tools) TOOLS_ARG="$2"; shift ;;
	-h | --help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$HOTDROP" ]; then
	HOTDROP="$here/bin/hotdrop"
	(cd "$here" && go build -o bin/hotdrop ./cmd/hotdrop)
fi
for tool in /usr/sbin/sshd ssh sftp ssh-keygen rclone; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is not installed" >&2; exit 2; }
done

W=$(mktemp -d /tmp/hotdrop-bench.XXXXXX)
chmod 755 "$W"
SSHD_PID=""
cleanup() {
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
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
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_key.pub")" >"$W/known_hosts"
SSH_OPTS=(-i "$W/id_ed25519" -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes
	-o BatchMode=yes -o GlobalKnownHostsFile=/dev/null)
# rclone's sftp backend, configured from the environment.
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=sftp RCLONE_CONFIG_BENCH_HOST=127.0.0.1 \
	RCLONE_CONFIG_BENCH_PORT="$PORT" RCLONE_CONFIG_BENCH_USER="$USER_NAME" \
	RCLONE_CONFIG_BENCH_KEY_FILE="$W/id_ed25519" RCLONE_CONFIG_BENCH_KNOWN_HOSTS_FILE="$W/known_hosts"

# hotdrop's configs: with a sha256 checksum file, and without checksum files.
mkdir -p "$W/hd/root" "$W/hd/requests.d"
for ck in sha256 none; do
	cat >"$W/hd/hotdrop-$ck.toml" <<EOF
state_dir = "$W/hd/state"
[watch]
root = "$W/hd/root"
[requests]
files = ["$W/hd/requests.d/*.toml"]
[destination]
url = "sftp://$USER_NAME@127.0.0.1:$PORT$REMOTE"
identity_file = "$W/id_ed25519"
known_hosts = "$W/known_hosts"
concurrency = 8
checksum = "$ck"
names = "any"
[status]
listen = ""
EOF
done

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

# --- the tools: each uploads $W/data/$set into $REMOTE/$run ------------------------------
run_tool() { # tool set run
	local tool=$1 set=$2 run=$3 src="$W/data/$2"
	case $tool in
	hotdrop)
		"$HOTDROP" send "$src" --to "$run" --config "$W/hd/hotdrop-sha256.toml" >/dev/null ;;
	hotdrop-nosum)
		"$HOTDROP" send "$src" --to "$run" --config "$W/hd/hotdrop-none.toml" >/dev/null ;;
	sftp)
		printf 'mkdir %s\nput -r %s %s/\n' "$REMOTE/$run" "$src" "$REMOTE/$run" >"$W/batch"
		sftp -q "${SSH_OPTS[@]}" -P "$PORT" -b "$W/batch" "$USER_NAME@127.0.0.1" >/dev/null ;;
	sftp-aes-R128)
		printf 'mkdir %s\nput -r %s %s/\n' "$REMOTE/$run" "$src" "$REMOTE/$run" >"$W/batch"
		sftp -q "${SSH_OPTS[@]}" -c aes128-gcm@openssh.com -R 128 -P "$PORT" -b "$W/batch" \
			"$USER_NAME@127.0.0.1" >/dev/null ;;
	rclone-t8)
		rclone copy --transfers 8 "$src" "bench:$REMOTE/$run/$set" 2>>"$W/rclone.log" ;;
	rclone-t8-nohash)
		rclone copy --transfers 8 --sftp-disable-hashcheck "$src" "bench:$REMOTE/$run/$set" 2>>"$W/rclone.log" ;;
	ssh-cat)
		if [ "$set" = big ]; then
			cat "$src/file.bin" | ssh "${SSH_OPTS[@]}" -p "$PORT" "$USER_NAME@127.0.0.1" \
				"mkdir -p '$REMOTE/$run' && cat > '$REMOTE/$run/file.bin'"
		else
			tar -C "$W/data" -cf - "$set" | ssh "${SSH_OPTS[@]}" -p "$PORT" "$USER_NAME@127.0.0.1" \
				"mkdir -p '$REMOTE/$run' && tar -C '$REMOTE/$run' -xf -"
		fi ;;
	esac
}

TOOLS=(hotdrop hotdrop-nosum sftp sftp-aes-R128 rclone-t8 rclone-t8-nohash ssh-cat)
[ -n "$TOOLS_ARG" ] && IFS=, read -r -a TOOLS <<<"$TOOLS_ARG"
# Server CPU: sshd's session processes do not pass their CPU time up to the listener
# (its cutime stays near zero), so a sampler walks the listener's descendants every 50 ms
# and keeps each process's last utime+stime; it prints the total when stopped.
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

RESULTS="$W/results"
: >"$RESULTS"
n=0
for round in $(seq "$ROUNDS"); do
	for s in ${SETS//,/ }; do
		for tool in "${TOOLS[@]}"; do
			n=$((n + 1))
			sync
			python3 "$W/srvcpu.py" "$SSHD_PID" "$W/srv" &
			sampler=$!
			/usr/bin/time -f '%e %U %S' -o "$W/time" bash -c "$(declare -f run_tool); $(declare -p W REMOTE HOTDROP SSH_OPTS PORT USER_NAME); run_tool $tool $s r$n" \
				|| { echo "run failed: $tool $s (round $round)" >&2; cat "$W/sshd.log" "$W/rclone.log" 2>/dev/null | tail -5 >&2; exit 1; }
			kill -TERM "$sampler"
			wait "$sampler" || true
			read -r wall usr sys <"$W/time"
			echo "$s $tool $round $wall $(awk "BEGIN{print $usr + $sys}") $(cat "$W/srv") ${SET_BYTES[$s]} ${SET_FILES[$s]}" >>"$RESULTS"
			rm -rf "${REMOTE:?}/r$n"
		done
	done
done

# --- the report -------------------------------------------------------------------------
echo
echo "hotdrop bench: $(nproc) cores, $(ssh -V 2>&1 | cut -d, -f1), rclone $(rclone version 2>/dev/null | head -1 | awk '{print $2}'), $ROUNDS interleaved rounds"
echo "(medians; CPU in seconds: client = the tool and its ssh, server = sshd and its sessions)"
sort -k1,1 -k2,2 -k4,4n "$RESULTS" | awk '
{ key = $1 " " $2; n[key]++; w[key, n[key]] = $4; c[key, n[key]] = $5; s[key, n[key]] = $6; bytes[key] = $7; files[key] = $8
  if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
function med(arr, key, cnt,   i, v, m, tmp) {
  for (i = 1; i <= cnt; i++) tmp[i] = arr[key, i]
  # insertion sort, cnt is tiny
  for (i = 2; i <= cnt; i++) { v = tmp[i]; m = i - 1; while (m > 0 && tmp[m] > v) { tmp[m + 1] = tmp[m]; m-- } tmp[m + 1] = v }
  return (cnt % 2) ? tmp[(cnt + 1) / 2] : (tmp[cnt / 2] + tmp[cnt / 2 + 1]) / 2
}
END {
  printf "%-6s %-17s %8s %9s %9s %8s %8s %9s\n", "set", "tool", "wall s", "MB/s", "files/s", "cli cpu", "srv cpu", "hotdrop x"
  for (i = 1; i <= k; i++) { key = order[i]; split(key, p, " ")
    mw[key] = med(w, key, n[key]); mc[key] = med(c, key, n[key]); ms[key] = med(s, key, n[key]) }
  for (i = 1; i <= k; i++) { key = order[i]; split(key, p, " ")
    hd = p[1] " hotdrop"; ratio = (hd in mw && mw[key] > 0) ? sprintf("%.2f", mw[key] / mw[hd]) : "-"
    printf "%-6s %-17s %8.2f %9.1f %9.0f %8.2f %8.2f %9s\n", p[1], p[2], mw[key], bytes[key] / mw[key] / 1e6,
      files[key] / mw[key], mc[key], ms[key], ratio }
  print "hotdrop x = the peer'"'"'s wall time / hotdrop'"'"'s (above 1: hotdrop is faster)"
}'
