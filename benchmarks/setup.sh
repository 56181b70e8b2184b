#!/bin/sh
# The classical peers every benchmark compares against (Debian/Ubuntu).
set -e
apt-get update -qq
apt-get install -y -qq flac wavpack libjxl-tools webp optipng time >/dev/null
