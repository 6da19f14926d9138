#!/usr/bin/env bash
# Run the official MCP conformance suite against `pvemcp serve --http` on the simulator, in both spec versions.
#
#   scripts/conformance.sh                  # both legs; exit 0 only if every failure is in the checked-in baseline
#   scripts/conformance.sh 2026-07-28       # one leg
#
# The suite (npm @modelcontextprotocol/conformance, pinned) needs Node >= 22; Node 22 comes from the npm registry
# as the package node-linux-<arch>, so nothing is installed globally and only `npm` must be on PATH. Both are
# installed on first use into a cache directory. The server under test is the real command, started by
# tests/reliability/stack.py on a free 127.0.0.1 port in front of a simulator; it stops when this script ends
# (and by itself after its lifetime). Expected failures: tests/reliability/conformance-baseline-{2025,2026}.yml
# (scenarios that need the SDKs' demo tools, and features pvemcp deliberately does not implement). Stale
# baseline entries fail the run too, so the baselines stay exact.
#
# Environment: PYTHON (interpreter with pvemcp installed; default ./.venv/bin/python, else python3),
#              PVEMCP_CONFORMANCE_DIR (install dir; default ${XDG_CACHE_HOME:-~/.cache}/pvemcp/conformance),
#              PVEMCP_CONFORMANCE_OUT (results dir; default a fresh temporary directory, kept and printed).
set -euo pipefail

NODE_VERSION="22.23.3"
SUITE_VERSION="0.2.0-alpha.12"
if [[ $# -gt 0 ]]; then LEGS=("$@"); else LEGS=(2025-11-25 2026-07-28); fi

cd "$(dirname "$0")/.."
repo="$(pwd)"

command -v npm >/dev/null 2>&1 || { echo "conformance.sh: npm is not on PATH" >&2; exit 127; }

case "$(uname -m)" in
  x86_64 | amd64) arch="x64" ;;
  aarch64 | arm64) arch="arm64" ;;
  *) echo "conformance.sh: no Node ${NODE_VERSION} package for $(uname -m)" >&2; exit 2 ;;
esac

PY="${PYTHON:-}"
if [[ -z "${PY}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=".venv/bin/python"; else PY="python3"; fi
fi
"${PY}" -c "import pvemcp" 2>/dev/null || { echo "conformance.sh: ${PY} cannot import pvemcp (set PYTHON)" >&2; exit 2; }

cache_root="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pvemcp"
dir="${PVEMCP_CONFORMANCE_DIR:-${cache_root}/conformance}"
node_dir="${dir}/node-${NODE_VERSION}-${arch}"
suite_dir="${dir}/suite-${SUITE_VERSION}"
node_bin="${node_dir}/node_modules/node-linux-${arch}/bin"
suite_js="${suite_dir}/node_modules/@modelcontextprotocol/conformance/dist/index.js"

install() {  # install <dir> <package@version>: npm into a private prefix, serialised by a lock directory
  local prefix="$1" package="$2" lock="$1.lock"
  mkdir -p "${prefix}"
  until mkdir "${lock}" 2>/dev/null; do sleep 0.5; done
  trap 'rmdir "'"${lock}"'" 2>/dev/null || true' EXIT
  echo "conformance.sh: installing ${package} into ${prefix}" >&2
  [[ -f "${prefix}/package.json" ]] || printf '{"name":"pvemcp-conformance","private":true}\n' >"${prefix}/package.json"
  npm install --prefix "${prefix}" --no-audit --no-fund --loglevel=error --save-exact "${package}" >&2
  rmdir "${lock}" 2>/dev/null || true
  trap - EXIT
}

[[ -x "${node_bin}/node" ]] || install "${node_dir}" "node-linux-${arch}@${NODE_VERSION}"
export PATH="${node_bin}:${PATH}"
[[ "$(node --version)" == "v${NODE_VERSION}" ]] || { echo "conformance.sh: node ${NODE_VERSION} not usable" >&2; exit 2; }
[[ -f "${suite_js}" ]] || install "${suite_dir}" "@modelcontextprotocol/conformance@${SUITE_VERSION}"

out="${PVEMCP_CONFORMANCE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/pvemcp-conformance.XXXXXX")}"
mkdir -p "${out}"

# The server under test: simulator + `pvemcp serve --http 127.0.0.1:PORT`, stopped when this script exits.
"${PY}" tests/reliability/stack.py --lifetime 600 >"${out}/stack.json" 2>"${out}/server.log" &
stack_pid=$!
trap 'kill -TERM "${stack_pid}" 2>/dev/null || true; wait "${stack_pid}" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [[ -s "${out}/stack.json" ]] && break
  kill -0 "${stack_pid}" 2>/dev/null || { echo "conformance.sh: the server did not start (${out}/server.log)" >&2; exit 1; }
  sleep 0.1
done
url="$("${PY}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "${out}/stack.json")"
echo "conformance.sh: testing ${url} (results in ${out})" >&2

status=0
for leg in "${LEGS[@]}"; do
  baseline="${repo}/tests/reliability/conformance-baseline-${leg%%-*}.yml"
  echo "== conformance ${SUITE_VERSION}, --spec-version ${leg}, baseline ${baseline#"${repo}"/}"
  set +e
  node "${suite_js}" server --url "${url}" --spec-version "${leg}" --suite all \
    --expected-failures "${baseline}" -o "${out}/${leg}" >"${out}/${leg}.log" 2>&1
  rc=$?
  set -e
  # The per-scenario lines, the totals and the baseline verdict; the full log stays in the results dir.
  sed -n '/=== SUMMARY ===/,$p' "${out}/${leg}.log"
  echo "== ${leg}: exit ${rc}"
  [[ ${rc} -eq 0 ]] || status=1
done
exit "${status}"
