#!/usr/bin/env bash
# Installs what building and testing need on a Debian machine: a C toolchain
# for crates that build C, the software TPM and tpm2-tools (TPM tests),
# openssl (PKI tests), promtool (metrics tests), PostgreSQL, apt-utils
# (apt-ftparchive: the host agent's private apt repository), and rpm, dnf,
# createrepo-c and pacman (the agent's parsers of their output are tested on
# the real tools). Idempotent:
# packages already present are not reinstalled. Installs Rust with rustup when
# cargo is missing (Debian's cargo is too old for this workspace).
set -euo pipefail

need=()
for pair in gcc:build-essential pkg-config:pkg-config swtpm:swtpm swtpm_setup:swtpm-tools \
            tpm2_quote:tpm2-tools openssl:openssl promtool:prometheus psql:postgresql \
            curl:curl jq:jq apt-ftparchive:apt-utils dpkg-deb:dpkg rpmbuild:rpm \
            pacman:pacman-package-manager dnf:dnf createrepo_c:createrepo-c; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ! -d /usr/lib/postgresql ]; then need+=(postgresql); fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
