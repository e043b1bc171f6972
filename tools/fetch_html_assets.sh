#!/usr/bin/env bash
# Refresh the JavaScript libraries that `incdsl compile --to html` inlines into its page, from the
# npm registry (npm pack: no node_modules, no build step). Run from the repo root, then commit
# incdsl/backends/html_assets/vendor/. The versions are pinned here and listed in VERSIONS.
#   cytoscape                  graph rendering, pan/zoom, compound nodes (the module boxes)
#   cytoscape-expand-collapse  folding and unfolding compound nodes, with meta-edges
#   @dagrejs/dagre             layered (Sugiyama) layout with edge routes: the page calls it directly
#                              (cytoscape-dagre, its cytoscape wrapper, drops the edge routes)
set -euo pipefail
packages=(cytoscape@3.35.0 cytoscape-expand-collapse@4.1.1 @dagrejs/dagre@3.0.0)
dest="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/incdsl/backends/html_assets/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "${packages[@]}" >/dev/null
mkdir -p "$dest"
: > "$dest/VERSIONS"
for spec in "${packages[@]}"; do
  name="${spec%@*}"; version="${spec##*@}"; tgz="${name#@}"; tgz="${tgz//\//-}-$version.tgz"
  mkdir -p "x/$name" && tar xzf "$tgz" -C "x/$name"
  echo "$spec  (npm pack $spec)" >> "$dest/VERSIONS"
done
cp x/cytoscape/package/dist/cytoscape.min.js "$dest/"
cp x/cytoscape/package/LICENSE "$dest/cytoscape.LICENSE"
cp x/cytoscape-expand-collapse/package/cytoscape-expand-collapse.js "$dest/"
cp x/cytoscape-expand-collapse/package/LICENSE.md "$dest/cytoscape-expand-collapse.LICENSE"
cp x/@dagrejs/dagre/package/dist/dagre.min.js "$dest/"
cp x/@dagrejs/dagre/package/LICENSE "$dest/dagre.LICENSE"
echo "vendored into $dest:" && cat "$dest/VERSIONS"
