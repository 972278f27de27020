#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with a clear message.
# Order: $PYTHON, python3.12, python3.13, python3 on PATH, then pyenv's installed versions.
# A pyenv shim (python3.12) exits with an error unless PYENV_VERSION names that version, so a
# shim that fails the version check is skipped and pyenv is asked for the real binary instead.
set -u
is_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for cand in "${PYTHON:-}" python3.12 python3.13 python3.14 python3; do
  [ -n "$cand" ] || continue
  path=$(command -v "$cand" 2>/dev/null) || continue
  if is_ok "$path"; then
    # resolve a pyenv shim to the real interpreter so .venv does not depend on the shim
    real=$("$path" -c 'import sys; print(sys.executable)' 2>/dev/null) || real=$path
    echo "$real"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -t. -k2,2n -k3,3n); do
    path="$root/versions/$v/bin/python3"
    if [ -x "$path" ] && is_ok "$path"; then echo "$path"; exit 0; fi
  done
fi
echo "error: bayesarena needs Python >= 3.12 and found none (tried \$PYTHON, python3.12," \
     "python3.13, python3.14, python3 and pyenv's versions). Install one (e.g. 'pyenv install" \
     "3.12') or run with PYTHON=/path/to/python3.12." >&2
exit 1
