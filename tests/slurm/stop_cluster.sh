#!/usr/bin/env bash
# Stop the daemons tests/slurm/setup_cluster.sh started, by the PIDs it recorded (and only those).
# Once its controller is stopped, its slurm.conf goes too: SLURM clients (and so every snakemake
# call, whose SLURM plugin asks for the controller's settings) would otherwise wait for the
# controller for about 10 s each time.
set -euo pipefail

STATE=${MEMNET_SLURM_STATE:-/var/lib/memnet-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by memnet tests/slurm/setup_cluster.sh"
PIDS=$STATE/started.pids
[[ -f $PIDS ]] || exit 0

# Stop in reverse start order: slurmd, slurmctld, then munged.
tac "$PIDS" | while read -r name pid; do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || continue # already gone
    kill -TERM "$pid"
    for _ in $(seq 100); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        echo "stop_cluster: $name ($pid) ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid"
    fi
done
if grep -q "^slurmctld " "$PIDS" && grep -qF "$MARKER" "$CONF" 2>/dev/null; then
    rm "$CONF"
fi
rm -f "$PIDS"
