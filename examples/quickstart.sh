#!/usr/bin/env bash
# The README's first command: installs what tsbuild needs, builds the seed example into a tarball,
# shows its history, and loads and runs it in Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[[ -x build/Release/tsbuild-sandbox && -f dist/cli/main.js ]] || npm install --no-audit --no-fund
bash examples/make-base.sh busybox
node bin/tsbuild.cjs -t changed-ubuntu -o changed-ubuntu.tar examples/changed-ubuntu
node bin/tsbuild.cjs history changed-ubuntu
/usr/bin/docker load -i changed-ubuntu.tar
echo "--- docker run --rm changed-ubuntu cat /tmp/newfile"
/usr/bin/docker run --rm changed-ubuntu cat /tmp/newfile
