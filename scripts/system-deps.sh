#!/usr/bin/env bash
# Installs the Debian packages the app or the tests use, when apt is usable (root, apt-get present).
#   scripts/system-deps.sh data   real Fashion-MNIST (dataset-fashion-mnist); never fails
#   scripts/system-deps.sh test   the same plus Chromium and its driver for the browser tests
# Packages already installed are skipped, so a second run is quick.
set -u
mode=${1:-test}
packages=(dataset-fashion-mnist)
[ "$mode" = test ] && packages+=(chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get not found; install these yourself: ${missing[*]}" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "system-deps: not root and no password-less sudo; install these yourself: sudo apt-get install ${missing[*]}" >&2
    exit 0
  fi
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "system-deps: could not install ${missing[*]}" >&2
exit 0
