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

command -v npm >/dev/null 2>&1 || { echo "inspector.sh: npm is not on PATH (install Node.js 20+)" >&2; exit 127; }

cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pvemcp"
dir="${PVEMCP_INSPECTOR_DIR:-${cache_root}/inspector-${VERSION}}"
bin="${dir}/node_modules/.bin/mcp-inspector"

if [[ ! -x "${bin}" ]]; then
  mkdir -p "${dir}"
  lock="${dir}/.install.lock"
  # Two test workers may race to install: serialise on a lock directory (mkdir is atomic).
  until mkdir "${lock}" 2>/dev/null; do sleep 0.5; done
  trap 'rmdir "${lock}" 2>/dev/null || true' EXIT
  if [[ ! -x "${bin}" ]]; then
    echo "inspector.sh: installing ${PACKAGE} into ${dir}" >&2
    [[ -f "${dir}/package.json" ]] || printf '{"name":"pvemcp-inspector","private":true}\n' >"${dir}/package.json"
    npm install --prefix "${dir}" --no-audit --no-fund --loglevel=error --save-exact "${PACKAGE}" >&2
  fi
  rmdir "${lock}" 2>/dev/null || true
  trap - EXIT
fi

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
