#!/usr/bin/env bash
# Install what provgraph needs from the system on a fresh machine: Java 17+ (Neo4j runs on it)
# and Maven (fetches Neo4j's jars once), npm for the console's libraries, and with --test
# Chromium for the console's browser tests. Python packages are installed by the Makefile.
set -euo pipefail

need=()
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! command -v java >/dev/null 2>&1 || ! [[ "$(java_major)" =~ ^(17|21)$ ]]; then
  need+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The console's end-to-end tests drive Debian's Chromium (never a downloaded browser build).
if [ "${1:-}" = "--test" ] && ! [ -x /usr/bin/chromium ]; then need+=(chromium); fi
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi

echo "provgraph needs: ${need[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
else
  echo "Install them with your system's package manager, then run this again." >&2
  exit 1
fi
