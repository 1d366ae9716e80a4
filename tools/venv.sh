# Sourced by classroom.sh and tests/run.sh (bash): make or reuse the project's virtualenv and
# install the project into it. A stock Debian 12 / Ubuntu 24.04 python3 refuses `pip install`
# outside a virtualenv (PEP 668, "externally-managed-environment"), so everything goes into one.
#
#   classroom_venv [EXTRAS]   e.g. classroom_venv test  -> the venv's bin/ first on PATH
#
# CLASSROOM_VENV: where the venv lives (default: .venv in the repository)
# PYTHON:         the interpreter that makes it (default: python3 on PATH; >= 3.11)
# On Debian/Ubuntu, as root, missing python3-venv / python3-dev / gcc are installed with apt-get
# (without root: the exact command to run is printed). The install is redone only when
# pyproject.toml, setup.py or sfu/_fanout.c changed (a stamp file in the venv).

_cv_say() { echo "classroom: $*" >&2; }

_cv_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# apt-get install "$@" when we may (root, or password-less sudo); 1 when we may not.
_cv_apt() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else return 1; fi
  fi
  _cv_say "installing Debian packages: $*"
  $sudo apt-get update -qq >/dev/null || return 1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null || return 1
}

_cv_is_system_python() {
  case "$(readlink -f "$(command -v "$1")")" in /usr/bin/*) return 0 ;; *) return 1 ;; esac
}

_cv_stamp() {
  (cd "$1" && cat pyproject.toml setup.py sfu/_fanout.c analytics/_silk.c analytics/_fit.c 2>/dev/null) | sha256sum | cut -d' ' -f1
}

classroom_venv() {
  local extras="${1:-}" root venv py want
  root="$(_cv_root)"
  venv="${CLASSROOM_VENV:-$root/.venv}"
  py="${PYTHON:-python3}"

  if ! command -v "$py" >/dev/null 2>&1; then
    _cv_apt python3 python3-venv || { _cv_say "no $py: install Python 3.11 or newer (apt-get install python3 python3-venv)"; return 1; }
  fi
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    _cv_say "$py is $("$py" -V 2>&1); the project needs Python 3.11 or newer (set PYTHON=...)"
    return 1
  fi

  # Reuse the venv when its interpreter still runs; otherwise (first run, or a removed Python) make it.
  if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; }; then
    if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      # Debian/Ubuntu ship venv's pip bootstrap separately (python3-venv, i.e. python3.X-venv).
      local ver; ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      _cv_apt python3-venv "python$ver-venv" || _cv_apt python3-venv || {
        _cv_say "$py cannot make a virtualenv: run  sudo apt-get install python3-venv  and try again"
        return 1
      }
    fi
    rm -rf "$venv"
    _cv_say "making the virtualenv $venv with $("$py" -V 2>&1)"
    "$py" -m venv "$venv" || { _cv_say "cannot make the virtualenv $venv"; rm -rf "$venv"; return 1; }
  fi

  # The SFU's C fan-out loop (sfu/_fanout.c) needs gcc and Python's headers; without them the
  # install still works and the server forwards in pure Python (it says so when it starts).
  local headers='import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
  local need=()
  command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
  # The analysis' Opus decoder without the CELT layer (analytics/_silk.c) links libopus' static library.
  compgen -G "/usr/lib/*-linux-gnu/libopus.a" >/dev/null || need+=(libopus-dev)
  if ! "$venv/bin/python" -c "$headers" 2>/dev/null && _cv_is_system_python "$py"; then need+=(python3-dev); fi
  if [ ${#need[@]} -gt 0 ]; then
    _cv_apt "${need[@]}" || _cv_say "without ${need[*]} the SFU forwards in pure Python (~2x the CPU) and the" \
      "analysis decodes Opus more slowly; to build the C parts: sudo apt-get install ${need[*]}, then remove" \
      "$venv/.classroom-installed and start again"
  fi

  # The report's charts draw their Chinese labels with a CJK font (analytics/fonts.py); without one
  # they show only the labels' Latin part.
  local zh
  zh="$(fc-list :lang=zh family 2>/dev/null || true)"
  if [ -z "$zh" ] && ! command -v fc-list >/dev/null 2>&1; then
    # no fontconfig (a minimal Debian): matplotlib finds the font files itself, so look for them
    zh="$(find /usr/share/fonts \( -iname '*CJK*' -o -iname 'wqy*' \) -print -quit 2>/dev/null || true)"
  fi
  if [ -z "$zh" ]; then
    _cv_apt fonts-noto-cjk || _cv_say "no Chinese font: the report charts will show only their English labels;" \
      "to draw Chinese: sudo apt-get install fonts-noto-cjk (or fonts-wqy-microhei)"
  fi

  # .classroom-installed: the project (serve); .classroom-installed-test: with the test extras too.
  want="$(_cv_stamp "$root")"
  local stamp="$venv/.classroom-installed${extras:+-$extras}"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    _cv_say "installing the project into $venv (pip install -e \"$spec\"; the first time takes a few minutes)"
    (cd "$root" && PIP_REQUIRE_VIRTUALENV=1 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      -e "$spec") || { _cv_say "pip install into $venv failed"; return 1; }
    echo "$want" > "$stamp"
    echo "$want" > "$venv/.classroom-installed"
  fi

  export VIRTUAL_ENV="$venv"
  export PATH="$venv/bin:$PATH"
  hash -r
}
