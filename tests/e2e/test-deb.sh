#!/usr/bin/env bash
# The Debian package (issue 15): debian/ builds with dpkg-buildpackage into `evidock` holding the
# daemon, the CLI, the unit, sysusers, tmpfiles, the udev rule, the configuration as conffiles, the
# man pages, the journald catalog and bash completion, without the simulator or an unversioned development .so; lintian
# finds no error; installed into a scratch root, evidockctl --help runs and the unit verifies.
# The build tree is kept in the meson build directory and reused (dpkg-buildpackage -nc), so a run
# after a change rebuilds only what changed; EVIDOCK_DEB_FULL=1 builds from clean.
set -uo pipefail
: "${EVIDOCK_SOURCE_ROOT:?run through meson test}"
: "${EVIDOCK_BUILD_ROOT:?run through meson test}"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }

for tool in dpkg-buildpackage dpkg-deb lintian fakeroot dh systemd-analyze; do
        command -v "$tool" >/dev/null || skip_all "$tool is not installed (scripts/deps installs dpkg-dev debhelper lintian fakeroot)"
done

version=$(cd "$EVIDOCK_SOURCE_ROOT" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
top=$EVIDOCK_BUILD_ROOT/deb
ws=$top/evidock-$version
mkdir -p "$ws"
# the source as it is in the working tree (tracked and untracked, not ignored): mtimes kept, so the
# kept build tree rebuilds only what changed; debian/ is always fresh
rm -rf "$ws/debian"
if git -C "$EVIDOCK_SOURCE_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$EVIDOCK_SOURCE_ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp -a --parents -t "$ws/")
else
        (cd "$EVIDOCK_SOURCE_ROOT" && find . -path './build*' -prune -o -path './.git' -prune -o -type f -print0 |
                xargs -0 cp -a --parents -t "$ws/")
fi
rm -f "$ws/debian/debhelper-build-stamp" "$top"/evidock_*.deb
keep=(-nc)
[ "${EVIDOCK_DEB_FULL:-0}" = 1 ] && keep=()
start=$(date +%s)
if (cd "$ws" && dpkg-buildpackage -us -uc -b "${keep[@]}") >"$top/build.log" 2>&1; then
        ok "dpkg-buildpackage -us -uc -b ${keep[*]} builds ($(($(date +%s) - start)) s)"
else
        not_ok "dpkg-buildpackage -us -uc -b ${keep[*]} builds" "$(tail -15 "$top/build.log")"
        echo "1..$n"
        exit 1
fi
deb=$top/evidock_${version}_${arch}.deb
[ -f "$deb" ] || { not_ok "the package evidock_${version}_${arch}.deb exists" "$(ls "$top")"; echo "1..$n"; exit 1; }

files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
missing=()
for f in /usr/sbin/evidockd /usr/bin/evidockctl /usr/libexec/evidock/evidock-media-worker \
         /usr/lib/systemd/system/evidockd.service /usr/lib/sysusers.d/evidock.conf /usr/lib/tmpfiles.d/evidock.conf \
         /usr/lib/udev/rules.d/70-evidock.rules /etc/evidock/evidock.conf /etc/evidock/recorders.d/example.conf \
         /usr/share/man/man1/evidockctl.1.gz /usr/share/man/man5/evidock.conf.5.gz /usr/share/man/man8/evidockd.8.gz \
         /usr/share/bash-completion/completions/evidockctl "/usr/lib/$multiarch/evidock/libevidock.so.0"; do
        grep -qxF "$f" <<<"$files" || missing+=("$f")
done
# the journald message catalog
grep -q '^/usr/lib/systemd/catalog/evidock\.catalog$' <<<"$files" || missing+=("/usr/lib/systemd/catalog/evidock.catalog")
[ ${#missing[@]} -eq 0 ] && ok "the package holds daemon, CLI, worker, unit, sysusers, tmpfiles, udev rule, conf, man pages, completion" ||
        not_ok "the package holds daemon, CLI, worker, unit, sysusers, tmpfiles, udev rule, conf, man pages, completion" "${missing[@]}"

unwanted=$(grep -E 'evidock-sim|/libevidock\.so$|\.h$|\.a$|\.pc$' <<<"$files")
[ -z "$unwanted" ] && ok "no simulator, no unversioned .so, no headers or static libraries" ||
        not_ok "no simulator, no unversioned .so, no headers or static libraries" $unwanted

conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
grep -qx /etc/evidock/evidock.conf <<<"$conffiles" && grep -qx /etc/evidock/recorders.d/example.conf <<<"$conffiles" &&
        ok "the configuration is conffiles" || not_ok "the configuration is conffiles" "conffiles: $conffiles"

postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null)
s=$(grep -n 'systemd-sysusers' <<<"$postinst" | head -1 | cut -d: -f1)
t=$(grep -n 'systemd-tmpfiles' <<<"$postinst" | head -1 | cut -d: -f1)
[ -n "$s" ] && [ -n "$t" ] && [ "$s" -lt "$t" ] && ok "postinst creates the evidock user before its directories" ||
        not_ok "postinst creates the evidock user before its directories" "$postinst"

lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges')
errors=$(grep '^E:' <<<"$lint")
[ -z "$errors" ] && ok "lintian finds no error" || not_ok "lintian finds no error" "$errors"
[ -n "$lint" ] && sed 's/^/# lintian: /' <<<"$lint"

root=$(mktemp -d /tmp/evidock-deb-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
runpath=$(readelf -d "$root/usr/bin/evidockctl" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[ "$runpath" = "/usr/lib/$multiarch/evidock" ] && ok "the binaries find the private library through RUNPATH" ||
        not_ok "the binaries find the private library through RUNPATH" "RUNPATH: '$runpath'"
# the scratch root is not /, so the private library directory is given explicitly
out=$(LD_LIBRARY_PATH="$root/usr/lib/$multiarch/evidock" "$root/usr/bin/evidockctl" --help 2>&1)
grep -q '^Usage: evidockctl' <<<"$out" && ok "the installed evidockctl --help runs" ||
        not_ok "the installed evidockctl --help runs" "$out"
out=$(LD_LIBRARY_PATH="$root/usr/lib/$multiarch/evidock" "$root/usr/sbin/evidockd" --version 2>&1)
grep -q "^evidockd " <<<"$out" && ok "the installed evidockd --version runs" || not_ok "the installed evidockd --version runs" "$out"
# the unit as installed, its programs taken from the scratch root (manual pages there too)
unit=$root/evidockd.service
sed -e "s|/usr/sbin/|$root/usr/sbin/|g" -e "s|/usr/libexec/|$root/usr/libexec/|g" \
        "$root/usr/lib/systemd/system/evidockd.service" >"$unit"
out=$(systemd-analyze verify --man=no "$unit" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "systemd-analyze verify accepts the installed unit" ||
        not_ok "systemd-analyze verify accepts the installed unit" "$out"
[ -n "$out" ] && sed 's/^/# verify: /' <<<"$out"
for m in $(sed -n 's/^Documentation=//p' "$root/usr/lib/systemd/system/evidockd.service"); do
        page=${m#man:}
        name=${page%(*}
        sec=${page##*(}
        sec=${sec%)}
        [ -f "$root/usr/share/man/man$sec/$name.$sec.gz" ] || not_ok "the unit's Documentation= pages are installed" "$page"
done
ok "the unit's Documentation= pages are checked"

echo "1..$n"
exit $failed
