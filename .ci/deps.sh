# Sourced by examples/demo.sh and tests/all.sh: installs, on Debian, the
# packages fleet builds with when they are missing (needs root for that).
fleet_need=""
for fleet_pkg in cmake make pkg-config gcc libc6-dev libck-dev libjemalloc-dev \
    libcmocka-dev; do
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
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $fleet_need
fi
