#!/usr/bin/env bash
# Create .venv/ at the repo root (Python 3.11+) and install the project with its
# `dev` extra. The install runs only when pyproject.toml changed since the last
# one: .venv/.installed holds the sha256 of the pyproject.toml it installed.
# Quiet on success; pip's log is shown when an install fails.
#
#   PYTHON=/path/to/python3.12 scripts/venv.sh   # choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed
LOG=$VENV/.install.log

py_ok() { # usable interpreter: 3.11 or newer
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

pick_python() {
  local c
  for c in ${PYTHON:-} python3.11 python3 python3.12; do
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then
      command -v "$c"
      return 0
    fi
  done
  echo "venv: need Python 3.11+ (python3.11 or python3); set PYTHON=/path/to/python" >&2
  return 1
}

# Serialise concurrent runs (parallel `make` targets, several shells).
mkdir -p .run
exec 9>.run/venv.lock
command -v flock >/dev/null 2>&1 && flock 9

if [ -e "$VENV" ] && ! { [ -x "$VENV/bin/python" ] && py_ok "$VENV/bin/python" \
    && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }; then
  echo "venv: $VENV is broken or older than Python 3.11: recreating it" >&2
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(pick_python)
  echo "venv: creating $VENV with $("$PY" -c 'import sys; print(sys.version.split()[0])') ($PY)"
  "$PY" -m venv "$VENV"
fi

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  exit 0
fi

echo "venv: installing .[dev] (pyproject.toml changed)"
rm -f "$STAMP"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

if "${pip[@]}" install -q -e '.[dev]' >"$LOG" 2>&1; then
  :
else
  # pyproject.toml that setuptools cannot build (e.g. a flat layout with several
  # top-level packages and no package list) still names its dependencies: install
  # those so the code runs from the repo root (pytest has pythonpath=["."]).
  echo "venv: 'pip install -e .[dev]' failed (is the project buildable? see $LOG);" \
    "installing the dependencies from pyproject.toml instead" >&2
  req=$VENV/.requirements.txt
  "$VENV/bin/python" - >"$req" <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
deps = list(project.get("dependencies", []))
deps += project.get("optional-dependencies", {}).get("dev", [])
print("\n".join(deps))
EOF
  if ! "${pip[@]}" install -q -r "$req" >>"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "venv: pip install failed; full log in $LOG" >&2
    exit 1
  fi
fi

echo "$want" >"$STAMP"
echo "venv: ready ($VENV)"
