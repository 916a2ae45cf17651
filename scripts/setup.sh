#!/usr/bin/env bash
# Set up everything streamd needs on a fresh Debian machine: system packages (as root), a virtualenv
# in .venv, torch (CPU build, pinned) and the project with its train and test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libportaudio2 libsndfile1 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox systemd
          flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
.venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[train,test]'
echo "setup: ready (.venv)"
