# Sourced by the check scripts: a scratch folder $work (removed on exit), `need PATH...` (skips the
# check, exit 77, when an input is absent) and `fail MESSAGE` (exit 1).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need() {
  for path in "$@"; do
    if [ ! -e "$path" ]; then echo "SKIPPED: $path not found (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)"; exit 77; fi
  done
}
fail() { echo "FAIL: $*"; exit 1; }
