#!/usr/bin/env bash
# Install and start a single-node SLURM cluster on this machine (Debian, as root), idempotently.
#
# Usage: tests/slurm/setup_cluster.sh
# Environment: MEMNET_SLURM_STATE (default /var/lib/memnet-slurm) holds logs, spool, the job
# completion record (jobcomp.txt) and started.pids: one "name pid" line per daemon this script
# started, which tests/slurm/stop_cluster.sh stops again. Daemons already running are left alone.
# Exit status 2 means "cannot run here" (not root, not Debian, foreign slurm.conf): callers skip.
set -euo pipefail

STATE=${MEMNET_SLURM_STATE:-/var/lib/memnet-slurm}
CONF=/etc/slurm/slurm.conf # fixed path: the plugin's job step drops SLURM_CONF
NODE=memnet-node
PARTITION=debug
MARKER="# written by memnet tests/slurm/setup_cluster.sh"

cannot_run() {
    echo "setup_cluster: $*" >&2
    exit 2
}

[[ $(id -u) == 0 ]] || cannot_run "needs root (it installs packages and starts daemons)"
[[ -f /etc/debian_version ]] || cannot_run "needs Debian (apt packages slurm-wlm and munge)"
if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
    cannot_run "$CONF exists and was not written by this script; refusing to replace it"
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

mkdir -p "$STATE/ctld" "$STATE/spool" /run/munge
chown munge:munge /run/munge
touch "$STATE/started.pids"

remember() { # name pidfile: record a daemon we started
    local pid
    for _ in $(seq 50); do
        [[ -s $2 ]] && break
        sleep 0.1
    done
    pid=$(cat "$2")
    echo "$1 $pid" >>"$STATE/started.pids"
}

alive() { # pidfile comm: is the daemon in pidfile running?
    [[ -s $1 ]] && [[ $(cat "/proc/$(cat "$1")/comm" 2>/dev/null) == "$2" ]]
}

# munge authenticates every SLURM message.
[[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged
    remember munged /run/munge/munged.pid
fi

cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
cat >"$CONF.tmp" <<EOF
$MARKER
ClusterName=memnet
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
# no systemd or cgroups here: track processes through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MailProg=/bin/true
# no accounting database: finished jobs are recorded here, and jobs stay in squeue for MinJobAge
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.txt
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
if cmp -s "$CONF.tmp" "$CONF"; then
    rm "$CONF.tmp"
else
    mv "$CONF.tmp" "$CONF"
    if alive "$STATE/slurmctld.pid" slurmctld; then scontrol reconfigure; fi
fi

if ! alive "$STATE/slurmctld.pid" slurmctld; then
    rm -f "$STATE/slurmctld.pid"
    slurmctld
    remember slurmctld "$STATE/slurmctld.pid"
fi
if ! alive "$STATE/slurmd.pid" slurmd; then
    rm -f "$STATE/slurmd.pid"
    slurmd -N "$NODE"
    remember slurmd "$STATE/slurmd.pid"
fi

for _ in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    case $state in
    idle | mix | alloc) exit 0 ;;
    down* | drain* | drng*) scontrol update nodename="$NODE" state=resume || true ;;
    esac
    sleep 1
done
echo "setup_cluster: node $NODE not ready after 60 s (state: '${state:-none}'); see $STATE/*.log" >&2
exit 1
