#!/usr/bin/env bash
# Run the pinned MCP Inspector CLI, installing it on first use into a cache directory.
#
#   scripts/inspector.sh --cli <python> -m pvemcp serve --method tools/list --strict
#   scripts/inspector.sh --print-bin          # install if needed, print the binary's path
#
# The Inspector writes a catalog and secrets under ~/.mcp-inspector, so HOME is pointed at a scratch
# directory: runs are hermetic and never touch the real home. Nothing is installed globally.
# Environment: PVEMCP_INSPECTOR_DIR (install dir; default ${XDG_CACHE_HOME:-~/.cache}/pvemcp/inspector-<version>),
#              PVEMCP_INSPECTOR_HOME (HOME for the Inspector; default a fresh temporary directory).
set -euo pipefail

VERSION="2.12.0"
PACKAGE="@modelcontextprotocol/inspector@${VERSION}"

cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pvemcp"
dir="${PVEMCP_INSPECTOR_DIR:-${cache_root}/inspector-${VERSION}}"
bin="${dir}/node_modules/.bin/mcp-inspector"

# shellcheck source=scripts/npm-tool.sh
source "$(dirname "$0")/npm-tool.sh"
npm_tool_install "${dir}" "${PACKAGE}" "${bin}"

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "${bin}"
  exit 0
fi

inspector_home="${PVEMCP_INSPECTOR_HOME:-}"
if [[ -z "${inspector_home}" ]]; then
  inspector_home="$(mktemp -d "${TMPDIR:-/tmp}/pvemcp-inspector-home.XXXXXX")"
  trap 'rm -rf "${inspector_home}"' EXIT
fi
HOME="${inspector_home}" "${bin}" "$@"
