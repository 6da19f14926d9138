#!/usr/bin/env bash
# The MCP Bundle for Claude Desktop, with the official `mcpb` CLI (npm @anthropic-ai/mcpb, pinned),
# installed on first use into a cache directory; nothing is installed globally.
#
#   scripts/mcpb.sh validate              # check mcpb/manifest.json against the manifest schema
#   scripts/mcpb.sh pack [OUT]            # stage the bundle and pack it (default dist/pvemcp-VERSION.mcpb)
#   scripts/mcpb.sh --print-bin           # install if needed, print the CLI's path
#   scripts/mcpb.sh ARGS...               # any other mcpb command (info, unpack, ...)
#
# The bundle is of the "uv" type: it carries pvemcp's source and pyproject.toml, and Claude Desktop
# provides Python and the dependencies itself. Environment: PVEMCP_MCPB_DIR (install dir; default
# ${XDG_CACHE_HOME:-~/.cache}/pvemcp/mcpb-<version>).
set -euo pipefail

VERSION="2.1.2"
PACKAGE="@anthropic-ai/mcpb@${VERSION}"

cd "$(dirname "$0")/.."
cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pvemcp"
dir="${PVEMCP_MCPB_DIR:-${cache_root}/mcpb-${VERSION}}"
bin="${dir}/node_modules/.bin/mcpb"

# shellcheck source=scripts/npm-tool.sh
source scripts/npm-tool.sh
npm_tool_install "${dir}" "${PACKAGE}" "${bin}"

case "${1:-}" in
  --print-bin)
    echo "${bin}"
    ;;
  validate)
    exec "${bin}" validate "${2:-mcpb/manifest.json}"
    ;;
  pack)
    version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)"
    out="${2:-dist/pvemcp-${version}.mcpb}"
    stage="$(mktemp -d "${TMPDIR:-/tmp}/pvemcp-mcpb.XXXXXX")"
    trap 'rm -rf "${stage}"' EXIT
    mkdir -p "${stage}/server" "$(dirname "${out}")"
    cp mcpb/manifest.json pyproject.toml README.md openapi.json tools.yaml "${stage}/"
    cp -r server/pvemcp "${stage}/server/"
    find "${stage}" -name '__pycache__' -prune -exec rm -rf {} +
    "${bin}" pack "${stage}" "${out}"
    ;;
  *)
    exec "${bin}" "$@"
    ;;
esac
