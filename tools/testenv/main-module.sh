# Sourced by build-keda.sh and build-kube-state-metrics.sh: a Go program built as the main module, from a copy of
# its module directory, so that its own go.mod `replace`/`exclude` lines and its go.sum apply (a wrapper module
# would ignore them).
# copy_module_source MODULE VERSION DEST: downloads MODULE@vVERSION from the module proxy and copies it to DEST.
copy_module_source() {
  local mod_dir
  mod_dir=$(go mod download -json "$1@v$2" | python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])')
  rm -rf "$3"
  cp -r "$mod_dir" "$3"
  chmod -R u+w "$3"
}
