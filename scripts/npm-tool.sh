# Sourced by the scripts that run a pinned npm CLI (inspector.sh, mcpb.sh): install it on first use into a
# private prefix in the cache, never globally. Two test workers may race to install, so the install is
# serialised on a lock directory (mkdir is atomic).
#
#   npm_tool_install DIR PACKAGE@VERSION BIN    # BIN: the executable that proves the install is complete

npm_tool_install() {
  local dir="$1" package="$2" bin="$3" lock="$1/.install.lock"
  command -v npm >/dev/null 2>&1 || { echo "$(basename "$0"): npm is not on PATH (install Node.js 20+)" >&2; exit 127; }
  [[ -x "${bin}" ]] && return 0
  mkdir -p "${dir}"
  until mkdir "${lock}" 2>/dev/null; do sleep 0.5; done
  trap 'rmdir "'"${lock}"'" 2>/dev/null || true' EXIT
  if [[ ! -x "${bin}" ]]; then
    echo "$(basename "$0"): installing ${package} into ${dir}" >&2
    [[ -f "${dir}/package.json" ]] || printf '{"name":"pvemcp-tool","private":true}\n' >"${dir}/package.json"
    npm install --prefix "${dir}" --no-audit --no-fund --loglevel=error --save-exact "${package}" >&2
  fi
  rmdir "${lock}" 2>/dev/null || true
  trap - EXIT
}
