#!/usr/bin/env bash
# Create .venv/ at the repo root (Python 3.11+) and install the exact versions of
# requirements.lock (runtime + `dev` extra, pinned by pip-compile for Python 3.11:
# the versions CI tested), then the project itself, editable, without dependencies.
# Packages the lock does not name are removed, so .venv matches the lock (a test
# that leans on an undeclared package fails here as on a fresh machine).
# The install runs only when requirements.lock or pyproject.toml changed since the
# last one: .venv/.installed holds the sha256 of both. Quiet on success; pip's log
# is shown when an install fails. `make lock` regenerates the lock.
#
#   PYTHON=/path/to/python3.12 scripts/venv.sh   # choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed
LOG=$VENV/.install.log
LOCK=requirements.lock

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

want=$(cat pyproject.toml "$LOCK" 2>/dev/null | sha256sum | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  exit 0
fi

rm -f "$STAMP"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
fail() {
  tail -n 40 "$LOG" >&2
  echo "venv: $*; full log in $LOG" >&2
  exit 1
}

# Names of installed distributions that $LOCK does not pin (pip and build tools kept).
not_in_lock() {
  "$VENV/bin/python" - "$LOCK" <<'PY'
import re
import sys
from importlib import metadata


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


with open(sys.argv[1], encoding="utf-8") as f:
    pinned = {norm(m.group(1)) for line in f
              if (m := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line))}
keep = pinned | {"pip", "setuptools", "wheel", "nj-medins-hub"}
names = {norm(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}
print(" ".join(sorted(names - keep)))
PY
}

# Every requirement of pyproject.toml (dev extra included) met by what is installed;
# otherwise the lock is stale (a dependency added without `make lock`).
lock_covers_pyproject() {
  "$VENV/bin/python" - <<'PY'
import sys
import tomllib
from importlib import metadata

try:
    from packaging.requirements import Requirement
except ImportError:  # nothing to check with: pip's own resolver already ran
    sys.exit(0)

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
bad = []
for text in [*project.get("dependencies", []),
             *project.get("optional-dependencies", {}).get("dev", [])]:
    req = Requirement(text)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        bad.append(f"{req.name}: not installed")
        continue
    if not req.specifier.contains(version, prereleases=True):
        bad.append(f"{req.name} {version} does not satisfy {req.specifier}")
for line in bad:
    print(f"venv: {line}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

if [ ! -f "$LOCK" ]; then
  echo "venv: no $LOCK: installing .[dev] from pyproject.toml (versions not pinned)" >&2
  "${pip[@]}" install -q -e '.[dev]' >"$LOG" 2>&1 || fail "pip install -e '.[dev]' failed"
else
  echo "venv: installing $LOCK and the project ($LOCK or pyproject.toml changed)"
  "${pip[@]}" install -q -r "$LOCK" >"$LOG" 2>&1 || fail "pip install -r $LOCK failed"
  extra=$(not_in_lock) || fail "could not list the installed packages"
  if [ -n "$extra" ]; then
    echo "venv: removing packages that $LOCK does not name: $extra"
    # shellcheck disable=SC2086  # one word per package
    "${pip[@]}" uninstall -q -y $extra >>"$LOG" 2>&1 || fail "pip uninstall failed"
  fi
  if ! "${pip[@]}" install -q --no-deps -e . >>"$LOG" 2>&1; then
    # A pyproject.toml that setuptools cannot build still leaves the locked
    # dependencies installed: the code runs from the repo root (pytest has
    # pythonpath=["."]).
    echo "venv: 'pip install --no-deps -e .' failed (is the project buildable? see $LOG);" \
      "the locked dependencies are installed" >&2
  fi
  lock_covers_pyproject 2>>"$LOG" \
    || fail "$LOCK does not cover pyproject.toml: run 'make lock'"
fi

echo "$want" >"$STAMP"
echo "venv: ready ($VENV)"
