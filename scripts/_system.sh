# Sourced by scripts/test: the Debian packages the browser and PostgreSQL tests need, installed where
# they are missing (Chromium with its driver, and the PostgreSQL server the tests start in a temporary
# folder of their own). Where they cannot be installed (no apt, not root) the tests that need them skip
# and say why.
set -euo pipefail
_missing=()
command -v chromium >/dev/null 2>&1 || _missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || _missing+=(chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || _missing+=(postgresql)
if [ "${#_missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing Debian packages: ${_missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || true
        apt-get install -y -qq --no-install-recommends "${_missing[@]}" >&2 \
            || echo "could not install ${_missing[*]}: the tests that need them will skip" >&2
    else
        echo "missing ${_missing[*]} (apt-get as root is needed to install them): the tests that need them will skip" >&2
    fi
fi
unset _missing
