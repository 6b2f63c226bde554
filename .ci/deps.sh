# Sourced by examples/demo.sh, tests/all.sh and perf/run.sh: installs, on
# Debian, the packages fleet builds with when they are missing (needs root
# for that), and those a caller names in fleet_extra. jq and prometheus
# (for promtool) check the metrics exporters' output.
fleet_need=""
for fleet_pkg in cmake make pkg-config gcc libc6-dev libck-dev libjemalloc-dev \
    libcmocka-dev jq prometheus ${fleet_extra:-}; do
    dpkg-query -W -f='${Status}' "$fleet_pkg" 2>/dev/null |
        grep -q "install ok installed" || fleet_need="$fleet_need $fleet_pkg"
done
if [ -n "$fleet_need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fleet needs:$fleet_need - install them, or run this as root" >&2
        exit 1
    fi
    echo "installing:$fleet_need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Packages with a daemon (prometheus) must not start it here: only
    # their tools are used. policy-rc.d is Debian's switch for that.
    fleet_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        fleet_policy=yes
    fi
    fleet_rc=0
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $fleet_need || fleet_rc=$?
    if [ -n "$fleet_policy" ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$fleet_rc" -eq 0 ] || exit "$fleet_rc"
fi
