#!/usr/bin/env bash
# Install everything xlir needs on Debian 12 (root, Python 3.11): Apertium from Debian's
# packages and a virtual environment (.venv) with the pinned Python requirements.
# Idempotent: when everything is already there it finishes in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the test that opens the HTML report in a headless browser
APT_PACKAGES=(apertium apertium-eng-spa apertium-eng-cat apertium-en-gl apertium-eo-en chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.xlir-requirements.sha256
want=$(cat envs/requirements.txt envs/constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python requirements (envs/requirements.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r envs/requirements.txt -c envs/constraints.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), snakemake $(.venv/bin/snakemake --version), apertium $(dpkg-query -W -f='${Version}' apertium))"
