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

# expect STATUS COMMAND...: runs COMMAND (stdout to $work/out, stderr to $work/err) within $expect_seconds
# (default 120) and checks its exit status (124 = it hung, 134 = abort, 139 = segmentation fault).
expect() {
  local want=$1
  shift
  timeout "${expect_seconds:-120}" "$@" > "$work/out" 2> "$work/err"
  local got=$?
  [ "$got" -eq "$want" ] || fail "$(basename "$1") ${*:2}: exit status $got, expected $want; stderr: $(head -c 600 "$work/err")"
}
# has TEXT / lacks TEXT: whether the last expect's stderr contains TEXT.
has() { grep -qF -- "$1" "$work/err" || fail "stderr lacks '$1': $(head -c 600 "$work/err")"; }
lacks() { ! grep -qF -- "$1" "$work/err" || fail "stderr has '$1': $(head -c 600 "$work/err")"; }
