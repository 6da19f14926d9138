#!/usr/bin/env bash
# The demo: the simulated Proxmox VE cluster plus pvemcp on streamable HTTP. Creates ./.venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
exec pvemcp demo "$@"
