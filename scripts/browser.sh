#!/usr/bin/env bash
# Install (when absent) the test tools that are programs, not Python packages: Debian's
# chromium and chromium-driver (tests/browser, Selenium against /usr/bin/chromium), a CJK
# font so the console's Chinese renders in screenshots, and promtool (Debian's prometheus:
# tests/unit/kernel/test_metrics_rules.py runs the alert rules' unit tests with it).
# Idempotent: all present means nothing to do. Uses apt-get as root, like scripts/services.sh; elsewhere
# it says what is missing and the browser tests skip (they fail under CI=true).
set -euo pipefail

CHROMIUM=${HUB_CHROMIUM:-/usr/bin/chromium}
DRIVER=${HUB_CHROMEDRIVER:-/usr/bin/chromedriver}

need_apt=()
[ -x "$CHROMIUM" ] || need_apt+=(chromium)
[ -x "$DRIVER" ] || need_apt+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need_apt+=(fonts-wqy-zenhei)
[ ${#need_apt[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing ${need_apt[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
else
  echo "browser: need ${need_apt[*]} for the console's browser tests (tests/browser):" \
       "run as root on Debian, or install them yourself" >&2
  exit 0
fi
[ -x "$CHROMIUM" ] && [ -x "$DRIVER" ] || { echo "browser: chromium did not install" >&2; exit 1; }
echo "browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) and chromedriver are installed"
