#!/usr/bin/env bash
# Rebuild app/static/vendor/editor.js from the pinned npm packages (package-lock.json).
# The built bundle is committed, so `make run` never needs node; run this only after changing
# editor.js or the versions in package.json.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
mkdir -p ../app/static/vendor
npx esbuild editor.js --bundle --minify --format=iife --global-name=GradaxEditor --target=es2020 \
  --legal-comments=eof --outfile=../app/static/vendor/editor.js
ls -l ../app/static/vendor/editor.js
