#!/usr/bin/env bash
# Reproduces the vendored browser bundles in playground/assets/ from the npm
# versions pinned in playground/assets-src/package-lock.json, and regenerates
# assets/LICENSES.md. The playground's own files (playground.js,
# playground.css) are not touched.
#
# To move to new versions: edit assets-src/package.json, run
# `npm install --ignore-scripts` there to refresh the lockfile, then run this
# script and the playground's Go tests.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/assets-src"
dst="$here/assets"

cd "$src"
# --ignore-scripts: nothing here needs an install script, so none gets to run.
npm ci --ignore-scripts --no-audit --no-fund

nm="$src/node_modules"
install -m 0644 "$nm/react/umd/react.production.min.js" "$dst/react.production.min.js"
install -m 0644 "$nm/react-dom/umd/react-dom.production.min.js" "$dst/react-dom.production.min.js"
install -m 0644 "$nm/graphql-ws/umd/graphql-ws.min.js" "$dst/graphql-ws.min.js"
install -m 0644 "$nm/graphiql/graphiql.min.js" "$dst/graphiql.min.js"
install -m 0644 "$nm/graphiql/graphiql.min.css" "$dst/graphiql.min.css"
node "$src/licenses.mjs" >"$dst/LICENSES.md"

# Source maps are not shipped; drop the trailing reference so browsers do not
# ask for a file that does not exist.
for f in "$dst"/*.min.js "$dst"/*.min.css; do
  sed -i -e '${/^\/[/*]# sourceMappingURL=/d}' "$f"
done

cd "$dst"
for f in react.production.min.js react-dom.production.min.js graphql-ws.min.js graphiql.min.js graphiql.min.css LICENSES.md; do
  printf '%10d  %s  %s\n' "$(wc -c <"$f")" "$(sha256sum "$f" | cut -c1-16)" "$f"
done
