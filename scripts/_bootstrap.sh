# Sourced by scripts/test and scripts/demo: makes sure .venv exists and holds this checkout, installed
# editable with the test, bench and dev extras. Re-installs only when pyproject.toml changed, so the second
# run of either command starts in a second.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${RESUMABLE_TRIGGERS_VENV:-$root/.venv}"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
fi
stamp="$venv/.resumable-triggers-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "installing resumable-triggers and its test tools into $venv (first run takes a minute or two)" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[test,bench,dev]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$root"
