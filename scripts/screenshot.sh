#!/usr/bin/env bash
# Headless Chromium screenshots of the built site: the landing page, one
# English page, one French page and one figure page, into _build/screenshots/.
# Installs Debian's chromium when it is missing (needs root and apt).
set -euo pipefail
cd "$(dirname "$0")/.."
html=_build/html
[ -f "$html/index.html" ] || { echo "build the site first: make book" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
out=_build/screenshots
mkdir -p "$out"
shot() {  # page, png
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1280,1600 \
    --virtual-time-budget=4000 --screenshot="$out/$2" "file://$PWD/$html/$1" 2>/dev/null
  echo "$out/$2"
}
shot index.html landing.png
shot book/en/intro.html english.png
shot book/fr/intro.html french.png
for page in notebooks/fig04_quadratics.html notebooks/fig07_bisls_vs_tuned.html notebooks/fig09_distillation.html; do
  [ -f "$html/$page" ] && shot "$page" "$(basename "$page" .html).png"
done
true
