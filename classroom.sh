#!/usr/bin/env bash
# Start the system on a fresh machine:  ./classroom.sh serve [classroom serve options]
# Makes or reuses a virtualenv (.venv; Debian 12 / Ubuntu 24.04 refuse pip outside one), installs
# the project into it (and, as root on Debian/Ubuntu, python3-venv / python3-dev / gcc when
# missing), then runs `classroom` with every argument passed through, e.g.
#   ./classroom.sh serve --host 0.0.0.0
#   ./classroom.sh admin create-admin --data-dir data --bureau 某县教育局
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=tools/venv.sh
. tools/venv.sh
classroom_venv
[ $# -eq 0 ] && set -- serve
exec classroom "$@"
