#!/bin/sh
# test_install.sh BUILD_DIR SOURCE_DIR — `cmake --install` into a temporary prefix, then:
#   - the binary, the unit, the sysusers entry, the example config and the docs are there;
#   - `systemd-analyze verify` accepts the installed unit (ExecStart points into the prefix and
#     must exist: a copy naming a missing binary is refused, so the check can fail);
#   - `systemd-analyze security --offline` rates the unit's hardening "OK" or better (≤ 3.0; systemd counts it in tenths: --threshold=30);
#   - the example config loads (`neuralops config show -c`), its secret from a credential file,
#     and the secret is not shown.
set -eu
build=$1
src=$2
tmp=$(mktemp -d /tmp/nops-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/p" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install"; }
for f in bin/neuralops lib/systemd/system/neuralops.service lib/sysusers.d/neuralops.conf \
         etc/neuralops/neuralops.ini.example share/doc/neuralops/README.md \
         share/doc/neuralops/docs/configuration.md; do
  [ -e "$tmp/p/$f" ] || fail "$f not installed"
done
"$tmp/p/bin/neuralops" version > /dev/null || fail "the installed binary does not run"

unit="$tmp/p/lib/systemd/system/neuralops.service"
grep -q "^ExecStart=$tmp/p/bin/neuralops serve -c $tmp/p/etc/neuralops/neuralops.ini\$" "$unit" ||
  fail "ExecStart does not name the installed binary and config: $(grep ExecStart "$unit")"
grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
out=$(cd "$tmp" && systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
sed "s|^ExecStart=$tmp/p/bin/neuralops|ExecStart=$tmp/p/bin/missing|" "$unit" > "$tmp/broken.service"
if (cd "$tmp" && systemd-analyze verify "$tmp/broken.service" > /dev/null 2>&1); then
  fail "systemd-analyze verify accepted a unit whose ExecStart does not exist"
fi
(cd "$tmp" && systemd-analyze security --offline=true --threshold=30 "$unit" > "$tmp/sec.txt" 2>&1) ||
  { tail -3 "$tmp/sec.txt" >&2; fail "the unit's exposure level is above 3.0"; }

mkdir -p "$tmp/cred"
printf 'example-actor-key-0123456789\n' > "$tmp/cred/actor.key"
CREDENTIALS_DIRECTORY="$tmp/cred" "$tmp/p/bin/neuralops" config show \
  -c "$tmp/p/etc/neuralops/neuralops.ini.example" > "$tmp/show.txt" 2> "$tmp/show.err" ||
  fail "the example config does not load: $(cat "$tmp/show.err")"
grep -q '^format = json$' "$tmp/show.txt" || fail "the example's values were not read"
grep -q '^data_dir = /var/lib/neuralops/data$' "$tmp/show.txt" || fail "data_dir not read"
if grep -q example-actor-key "$tmp/show.txt" "$tmp/show.err"; then
  fail "the secret read from the credential file is shown"
fi
# without the credential the error names the setting and the file, not a value
if env -u CREDENTIALS_DIRECTORY "$tmp/p/bin/neuralops" config show \
     -c "$tmp/p/etc/neuralops/neuralops.ini.example" > /dev/null 2> "$tmp/nocred.err"; then
  fail "the example loaded without its credential"
fi
grep -q 'vector.actor_key: environment variable CREDENTIALS_DIRECTORY is not set' "$tmp/nocred.err" ||
  fail "unclear error without the credential: $(cat "$tmp/nocred.err")"
cmp -s "$src/deploy/neuralops.ini" "$tmp/p/etc/neuralops/neuralops.ini.example" ||
  fail "the installed example differs from deploy/neuralops.ini"
echo "test_install: ok"
