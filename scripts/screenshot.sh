#!/usr/bin/env bash
# Headless Chromium screenshots of the built site, 1400 px wide, into
# _build/screenshots/: the landing page, the scorecard, the API page, an English
# prose page, a French page (French interface) and two figure pages.
# `make screenshot` builds the site first when it is missing. Installs Debian's
# chromium when it is missing (needs root and apt).
set -euo pipefail
cd "$(dirname "$0")/.."
html=_build/html
for page in index.html fr/index.html; do
  [ -f "$html/$page" ] || { echo "no $html/$page: run make book (make screenshot does)" >&2; exit 1; }
done
if ! command -v chromium >/dev/null; then
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
out=_build/screenshots
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shot() {  # page, png, height
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1400,"${3:-1600}" \
    --virtual-time-budget=6000 --screenshot="$out/$2" "file://$PWD/$html/$1" 2>/dev/null
  echo "$out/$2"
}
shot book/index.html landing.png
shot book/scorecard.html scorecard.png 3200
shot book/api.html api.png 2400
shot book/en/intro.html english.png
shot fr/book/fr/optimisation.html french.png 2000
for page in notebooks/fig04_quadratics.html notebooks/fig12_eta_sweep.html; do
  [ -f "$html/$page" ] && shot "$page" "$(basename "$page" .html).png"
done
true
