#!/usr/bin/env bash
# Sourced by scripts/test.sh: the Debian packages the multi-replica test runs for real (PostgreSQL, HAProxy).
# Installed with apt-get when missing and we may (root, or passwordless sudo); otherwise that test says what to install.
_pvemcp_missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || _pvemcp_missing+=(postgresql)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || _pvemcp_missing+=(haproxy)
if [ ${#_pvemcp_missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  _pvemcp_sudo=""
  [ "$(id -u)" -ne 0 ] && _pvemcp_sudo="sudo -n"
  echo "== installing ${_pvemcp_missing[*]} (multi-replica test)"
  $_pvemcp_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${_pvemcp_missing[@]}" >/dev/null \
    || { $_pvemcp_sudo apt-get update -q >/dev/null && \
         $_pvemcp_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${_pvemcp_missing[@]}" >/dev/null; } \
    || echo "warning: could not install ${_pvemcp_missing[*]}; tests/replicas will say what is missing"
fi
unset _pvemcp_missing _pvemcp_sudo
