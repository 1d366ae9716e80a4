#!/usr/bin/env bash
# Installs the Firefox driver's npm packages (loadtest/firefox_driver: puppeteer-core, pinned by its
# package-lock.json) when node_modules is missing or the lock file changed since the last install.
# No install script runs and no browser is downloaded: the tests drive Debian's firefox-esr.
# Needs Debian's nodejs and npm (tests/apt-packages.txt). tests/run.sh runs it before pytest.
set -euo pipefail
cd "$(dirname "$0")/../loadtest/firefox_driver"
stamp=node_modules/.classroom-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "installing the Firefox driver's npm packages (loadtest/firefox_driver, node $(node --version))"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
echo "$want" > "$stamp"
