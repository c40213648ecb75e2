#!/usr/bin/env bash
# Host profile for benchmarking the registrar and loadgen: shows each knob's current and
# recommended value, and changes nothing unless --apply is given. See tuning/README.md for
# why each knob matters.
#
#   tuning/host-profile.sh                 # show current vs recommended (any user)
#   sudo tuning/host-profile.sh --apply    # apply; writes a restore script first
#
# --apply saves the previous values to $RESTORE (default /tmp/host-profile.restore.sh), so a
# shared host can be put back with `sudo sh /tmp/host-profile.restore.sh`.
set -euo pipefail

APPLY=0
RESTORE=${RESTORE:-/tmp/host-profile.restore.sh}
for arg in "$@"; do
    case "$arg" in
        --apply) APPLY=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "host-profile.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

# sysctl name, recommended value, one-line reason.
SYSCTLS=(
    "net.core.rmem_max|16777216|lets sockets ask for 16 MiB receive buffers (bursts of W x N requests)"
    "net.core.wmem_max|16777216|same for send buffers"
    "net.core.rmem_default|4194304|buffers for sockets that do not ask (4 MiB)"
    "net.core.wmem_default|4194304|same for send"
    "net.core.netdev_max_backlog|16384|per-CPU backlog; loopback traffic queues here, 1000 drops bursts"
    "net.core.busy_poll|50|us to busy-poll a NIC queue in poll/select (real NICs only; no effect on lo)"
    "net.core.busy_read|50|us to busy-poll a NIC queue on a blocking read (real NICs only)"
    "kernel.numa_balancing|0|page migration moves memory under a pinned thread: noise"
)
GOVERNOR=performance

if [ "$APPLY" = 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "host-profile.sh: --apply needs root" >&2
        exit 1
    fi
    echo "#!/bin/sh" > "$RESTORE"
    echo "# Restores what host-profile.sh --apply changed on $(date -u +%FT%TZ)." >> "$RESTORE"
fi

status() { # current recommended
    if [ "$1" = "n/a" ]; then echo "n/a"; elif [ "$1" = "$2" ]; then echo "ok"; else echo "DIFFERS"; fi
}

printf '%-28s %-14s %-14s %-8s %s\n' knob current recommended status why
for entry in "${SYSCTLS[@]}"; do
    IFS='|' read -r name want why <<< "$entry"
    path=/proc/sys/${name//./\/}
    current=n/a
    [ -r "$path" ] && current=$(cat "$path")
    st=$(status "$current" "$want")
    printf '%-28s %-14s %-14s %-8s %s\n' "$name" "$current" "$want" "$st" "$why"
    if [ "$APPLY" = 1 ] && [ "$st" = DIFFERS ]; then
        echo "echo $current > $path" >> "$RESTORE"
        if echo "$want" > "$path" 2>/dev/null; then
            echo "    applied $name = $want"
        else
            echo "    could not set $name (read-only in this container?)"
        fi
    fi
done

# CPU frequency governor: a fixed, high frequency removes ramp-up time from latency figures.
governors=$(ls /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor 2>/dev/null || true)
if [ -z "$governors" ]; then
    printf '%-28s %-14s %-14s %-8s %s\n' cpu.governor n/a "$GOVERNOR" n/a "no cpufreq (VM or container): the hypervisor decides"
else
    current=$(cat $governors | sort | uniq -c | awk '{printf "%s%s", sep, $2; sep=","}')
    st=$(status "$current" "$GOVERNOR")
    printf '%-28s %-14s %-14s %-8s %s\n' cpu.governor "$current" "$GOVERNOR" "$st" "no frequency ramp-up inside a measurement"
    if [ "$APPLY" = 1 ] && [ "$st" = DIFFERS ]; then
        for g in $governors; do
            echo "echo $(cat "$g") > $g" >> "$RESTORE"
            echo "$GOVERNOR" > "$g" || echo "    could not set $g"
        done
        echo "    applied governor $GOVERNOR"
    fi
fi

# Turbo/boost makes runs depend on temperature; report it, never change it silently.
if [ -r /sys/devices/system/cpu/intel_pstate/no_turbo ]; then
    printf '%-28s %-14s %-14s %-8s %s\n' intel_pstate.no_turbo "$(cat /sys/devices/system/cpu/intel_pstate/no_turbo)" "1 (optional)" info "turbo varies with temperature; disable for repeatable figures"
fi

echo
echo "IRQ affinity (hints; never changed by this script):"
if pgrep -x irqbalance >/dev/null 2>&1; then
    echo "  irqbalance is running: it moves NIC IRQs onto benchmark cores. Stop it for a run."
else
    echo "  irqbalance is not running: ok."
fi
nics=$(ls /sys/class/net 2>/dev/null | grep -v '^lo$' || true)
found=0
for nic in $nics; do
    while read -r irq _; do
        irq=${irq%:}
        [ -r "/proc/irq/$irq/smp_affinity_list" ] || continue
        echo "  $nic irq $irq -> cpus $(cat /proc/irq/$irq/smp_affinity_list)"
        found=1
    done < <(grep -w "$nic" /proc/interrupts 2>/dev/null || true)
done
[ "$found" = 0 ] && echo "  no NIC IRQs visible (loopback-only benchmark, or a VM without them): nothing to pin."
echo "  For NIC runs: put the NIC's IRQs on cores the registrar does not use, e.g."
echo "    echo 0 | sudo tee /proc/irq/<irq>/smp_affinity_list"

cpus=$(nproc)
half=$(( cpus / 2 ))
echo
echo "Pinning ($cpus online CPUs):"
if [ "$cpus" -ge 4 ]; then
    echo "  registrar on cores 0-$(( half - 1 )), loadgen on cores $half-$(( cpus - 1 )):"
    echo "    taskset -c 0-$(( half - 1 )) target/release/registrar ..."
    echo "    target/release/loadgen run --pin true --pin-first-core $half --workers $(( cpus - half )) ..."
else
    echo "  only $cpus CPUs: registrar and loadgen share cores, so figures are a lower bound;"
    echo "  still use --pin true so that threads do not migrate, and say so next to the figure."
fi
if [ "$APPLY" = 1 ]; then
    echo
    echo "Previous values saved to $RESTORE (sudo sh $RESTORE to undo)."
fi
