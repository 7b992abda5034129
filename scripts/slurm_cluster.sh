#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for shadho's real-scheduler tests and demos.
#
#   scripts/slurm_cluster.sh start    # install if needed, start munged + slurmctld + slurmd, wait idle
#   scripts/slurm_cluster.sh status   # daemons and sinfo
#   scripts/slurm_cluster.sh stop     # kill the daemons (state stays, so start is fast again)
#
# Everything (config, state, logs, a private munge key and socket) lives under $SHADHO_SLURM_DIR
# (default /tmp/shadho-slurm). `start` prints `export SLURM_CONF=...`; the same line is kept in
# $SHADHO_SLURM_DIR/env.sh for tests to source. Must run as root (SlurmUser=root): no systemd here,
# so the daemons are started by hand (see /work/shared/FACTS.md for the pitfalls this avoids).
set -euo pipefail

DIR="${SHADHO_SLURM_DIR:-/tmp/shadho-slurm}"
CONF="$DIR/slurm.conf"
ENVFILE="$DIR/env.sh"
MUNGE_DIR="$DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"
SBIN=/usr/sbin
CTLD_PORT="${SHADHO_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${SHADHO_SLURMD_PORT:-6818}"

log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

pid_alive() {  # pid_alive PIDFILE
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

ensure_installed() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing and installing them needs root"
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
    fi
}

write_config() {
    local host node_line cpus mem defmem
    host="$(hostname -s)"
    getent hosts "$host" >/dev/null || die "hostname -s ($host) does not resolve; add it to /etc/hosts"
    # The node line must come from slurmd -C: a hand-written CPUs= makes the controller assume
    # another topology and drain the node.
    node_line="$("$SBIN/slurmd" -C | head -n 1)"
    cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")"
    mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
    # Without DefMemPerCPU a job with no --mem takes all the node's memory and the next one
    # waits; this lets one job per core fit.
    defmem=$(( mem / (cpus > 0 ? cpus : 1) ))
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
# Written by shadho scripts/slurm_cluster.sh; a one-node test cluster.
ClusterName=shadho
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
$node_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    echo "export SLURM_CONF=$CONF" >"$ENVFILE"
}

start_munge() {
    if pid_alive "$MUNGE_DIR/munged.pid"; then return 0; fi
    mkdir -p "$MUNGE_DIR"
    # Every folder on the socket path needs o+x or clients cannot reach the socket.
    chmod 0755 "$DIR" "$MUNGE_DIR"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        head -c 1024 /dev/urandom >"$MUNGE_DIR/munge.key"
    fi
    chown root:root "$MUNGE_DIR/munge.key"
    chmod 0400 "$MUNGE_DIR/munge.key"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    # --force: munged refuses to run as root (and with a key in /tmp) without it.
    "$SBIN/munged" --force --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" || die "munged did not start (see $MUNGE_DIR/munged.log)"
    for _ in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && return 0; sleep 0.1; done
    die "munged socket $MUNGE_SOCKET did not appear"
}

port_in_use() {  # port_in_use PORT: is a TCP socket listening on PORT (any address)?
    local hex
    hex="$(printf '%04X' "$1")"
    # /proc/net/tcp{,6}: local address is field 2 (ADDR:PORT in hex), state 0A is LISTEN.
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
                      END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

check_port() {  # check_port NAME PORT PORTVAR: fail at once if NAME is not ours and PORT is taken
    pid_alive "$DIR/$1.pid" && return 0
    if port_in_use "$2"; then
        die "$1: port $2 already in use; stop what holds it (ss -ltnp 'sport = :$2') or set $3 to a free port"
    fi
}

start_daemon() {  # start_daemon NAME PORT: start slurmctld/slurmd, fail at once if it cannot serve
    local name="$1" port="$2" pidfile="$DIR/$1.pid"
    pid_alive "$pidfile" && return 0
    "$SBIN/$name" -f "$CONF" || die "$name did not start (see $DIR/log/$name.log)"
    # The daemon forks before it binds: give it a moment, then check it is still there.
    for _ in $(seq 20); do
        pid_alive "$pidfile" && port_in_use "$port" && return 0
        sleep 0.1
    done
    pid_alive "$pidfile" || die "$name exited at start: $(tail -n 3 "$DIR/log/$name.log" 2>/dev/null | tr '\n' ' ')"
}

start_slurm() {
    export SLURM_CONF="$CONF"
    start_daemon slurmctld "$CTLD_PORT"
    start_daemon slurmd "$SLURMD_PORT"
}

wait_idle() {
    export SLURM_CONF="$CONF"
    local state=""
    for _ in $(seq 120); do
        pid_alive "$DIR/slurmctld.pid" || die "slurmctld exited (see $DIR/log/slurmctld.log)"
        pid_alive "$DIR/slurmd.pid" || die "slurmd exited (see $DIR/log/slurmd.log)"
        state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)"
        case "$state" in
            idle|mixed|allocated|completing) return 0 ;;
            drain*|down*)
                scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.25
    done
    die "node did not become idle within 30 s (sinfo says '${state:-nothing}'; logs in $DIR/log)"
}

do_start() {
    [ "$(id -u)" = 0 ] || die "start must run as root (the test cluster uses SlurmUser=root)"
    ensure_installed
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" \
        && pid_alive "$MUNGE_DIR/munged.pid" && [ -f "$CONF" ]; then
        wait_idle
        log "already running"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    write_config
    check_port slurmctld "$CTLD_PORT" SHADHO_SLURMCTLD_PORT
    check_port slurmd "$SLURMD_PORT" SHADHO_SLURMD_PORT
    start_munge
    start_slurm
    wait_idle
    log "one-node cluster up ($(hostname -s)); config $CONF"
    echo "export SLURM_CONF=$CONF"
}

do_stop() {
    local f pid
    for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$MUNGE_DIR/munged.pid"; do
        if pid_alive "$f"; then
            pid="$(cat "$f")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    log "stopped"
}

do_status() {
    local rc=0 name f
    for name in munged slurmctld slurmd; do
        f="$DIR/$name.pid"; [ "$name" = munged ] && f="$MUNGE_DIR/munged.pid"
        if pid_alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; rc=1; fi
    done
    if [ "$rc" = 0 ]; then SLURM_CONF="$CONF" sinfo -N; echo "export SLURM_CONF=$CONF"; fi
    return "$rc"
}

case "${1:-}" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    restart) do_stop; do_start ;;
    *) echo "usage: $0 start|stop|status|restart   (state in \$SHADHO_SLURM_DIR, default /tmp/shadho-slurm)" >&2; exit 2 ;;
esac
