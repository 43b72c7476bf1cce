# Sourced by .ci/run, scripts/test and scripts/demo: makes sure .venv exists and holds this checkout, installed
# editable with the test, bench, dev and docs extras. Re-installs only when pyproject.toml changed, so the
# second run of either command starts in a second. As root, also apt-get installs the servers the e2e tests run.
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
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[test,bench,dev,docs]"
    touch "$stamp"
fi
# The editable install leaves setuptools' src/resumable_triggers.egg-info behind, on sys.path beside the
# venv's dist-info: Airflow then finds our airflow.plugins entry point twice and reports the second as
# a plugin import error ("already registered") in every component and the UI. The dist-info suffices.
rm -rf "$root"/src/*.egg-info
# The deployment harness's production-like topology runs Debian's PostgreSQL and Redis servers.
missing=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The browser tests (tests/e2e/test_run_page_browser.py) drive Debian's Chromium through playwright;
# playwright's own browser download needs the internet, Debian's package does not. Without it only
# those tests fail (browser_testkit says what to install).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]} with apt-get (the e2e topology tests start their own servers)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "warning: ${missing[*]} missing, and not root (or no apt-get) to install it: the e2e tests" \
            "with database='postgres' or executor='celery' will fail; run: sudo apt-get install ${missing[*]}" >&2
    fi
fi
export PATH="$venv/bin:$PATH"
cd "$root"
