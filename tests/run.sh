#!/usr/bin/env bash
# The whole test suite, installing what it needs first. Usage: bash tests/run.sh [pytest args]
# Fails when no test ran or when any test was skipped (the real-peer tests must run, not skip).
# Runs in the project's virtualenv (.venv, the one ./classroom.sh uses; tools/venv.sh), so it
# works with a system Python that refuses pip outside a venv (PEP 668) as with pyenv's.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
  pkg="${pkg%%#*}"; pkg="$(echo "$pkg" | xargs)"
  [ -z "$pkg" ] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 && continue
  # NodeSource's nodejs package brings its own npm (and conflicts with Debian's npm package)
  [ "$pkg" = npm ] && command -v npm >/dev/null 2>&1 && continue
  missing+=("$pkg")
done < tests/apt-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # Install without starting their services (nginx would listen on port 80, redis on 6379):
  # the tests start their own instances on 127.0.0.1.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  $SUDO apt-get update -qq
  unavailable=()
  for pkg in "${missing[@]}"; do
    policy="$(apt-cache policy "$pkg" 2>/dev/null)"  # (not piped into grep -q: pipefail + SIGPIPE)
    [[ "$policy" == *"Candidate: "[0-9]* ]] || unavailable+=("$pkg")
  done
  if [ ${#unavailable[@]} -gt 0 ]; then
    echo "FAIL: this system's apt has no package ${unavailable[*]} (needed by tests/apt-packages.txt)."
    echo "  The e2e tests drive a real Chromium at /usr/bin/chromium (Debian's chromium, chromium-driver);"
    echo "  Ubuntu 24.04 ships Chromium only as a snap. Run the suite on Debian 12 (./classroom.sh serve"
    echo "  itself works on Ubuntu 24.04)."
    if [ -n "$guard" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$guard" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi

# shellcheck source=tools/venv.sh
. tools/venv.sh
classroom_venv test

# the Firefox e2e tests' driver (npm's puppeteer-core; only when node_modules is missing or stale)
bash tools/firefox_driver.sh

report="$(mktemp -d)/junit.xml"
set +e
python3 -m pytest -q -rs --durations=25 --junitxml="$report" "$@"
status=$?
set -e
python3 - "$report" "$status" <<'PY'
import sys, xml.etree.ElementTree as ET
path, status = sys.argv[1], int(sys.argv[2])
root = ET.parse(path).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
if status == 0 and tests == 0:
    print("FAIL: no test was executed"); sys.exit(1)
if skipped:
    print(f"FAIL: {skipped} test(s) were skipped; every test must run"); sys.exit(1)
sys.exit(status)
PY
