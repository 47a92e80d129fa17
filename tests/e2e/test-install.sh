#!/usr/bin/env bash
# What `meson install` puts where (issue 8.4): libevidock is private (under <libdir>/evidock, nothing
# in the plain libdir, no headers, no pkg-config file, no static library), the programs reach it
# through their RUNPATH, and evidock-sim (a test and demo tool, run from the build tree) is not
# installed. The build tree is installed into a scratch DESTDIR; to run the installed programs with
# their RUNPATH as it is (LD_LIBRARY_PATH unset), the scratch prefix is bind-mounted over the real one
# in a private mount namespace (unshare -m) for that one command.
set -uo pipefail
: "${EVIDOCK_BUILD_ROOT:?run through meson test}"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

dest=$(mktemp -d /tmp/evidock-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT

opt() { # the value of a meson option of this build tree
        meson introspect --buildoptions "$EVIDOCK_BUILD_ROOT" |
                python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1"
}
prefix=$(opt prefix) libdir=$(opt libdir) bindir=$(opt bindir) sbindir=$(opt sbindir) libexecdir=$(opt libexecdir)
abs() { case "$1" in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
libdir=$(abs "$libdir") bindir=$(abs "$bindir") sbindir=$(abs "$sbindir") libexecdir=$(abs "$libexecdir")
privlib=$libdir/evidock

if meson install -C "$EVIDOCK_BUILD_ROOT" --no-rebuild --destdir "$dest" >"$dest.log" 2>&1; then
        ok "meson install --destdir"
else
        not_ok "meson install --destdir" "$(tail -15 "$dest.log")"
        rm -f "$dest.log"
        echo "1..$n"
        exit 1
fi
rm -f "$dest.log"
files=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)

lib=$(grep -E "^$privlib/libevidock\.so\.[0-9]+$" <<<"$files")
[ -n "$lib" ] && ok "libevidock.so.N is in the private $privlib" || not_ok "libevidock.so.N is in the private $privlib" $files
plain=$(grep -E "^$libdir/[^/]+$" <<<"$files")
[ -z "$plain" ] && ok "nothing in the plain libdir $libdir" || not_ok "nothing in the plain libdir $libdir" $plain
public=$(grep -E '\.h$|\.pc$|\.a$' <<<"$files")
[ -z "$public" ] && ok "no headers, pkg-config file or static library" || not_ok "no headers, pkg-config file or static library" $public
sim=$(grep -E 'evidock-sim' <<<"$files")
[ -z "$sim" ] && ok "evidock-sim (and its manual page) not installed" || not_ok "evidock-sim (and its manual page) not installed" $sim
missing=()
for f in "$bindir/evidockctl" "$sbindir/evidockd" "$libexecdir/evidock/evidock-media-worker"; do
        [ -x "$dest$f" ] || missing+=("$f")
done
[ ${#missing[@]} -eq 0 ] && ok "evidockctl, evidockd and the media worker are installed" ||
        not_ok "evidockctl, evidockd and the media worker are installed" "${missing[@]}"

bad=()
for f in "$bindir/evidockctl" "$sbindir/evidockd"; do
        rp=$(readelf -d "$dest$f" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
        [ "$rp" = "$privlib" ] || bad+=("$f: RUNPATH '$rp'")
done
[ ${#bad[@]} -eq 0 ] && ok "the programs' RUNPATH is $privlib" || not_ok "the programs' RUNPATH is $privlib" "${bad[@]}"

# FFmpeg is the media worker's alone (issue 14): evidockctl and evidockd start without its ~135 libraries
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
bad=()
for f in "$bindir/evidockctl" "$sbindir/evidockd" "$lib"; do
        av=$(needed "$dest$f" | grep -E '^lib(avformat|avcodec|avutil|swresample|swscale)\.' | tr '\n' ' ')
        [ -z "$av" ] || bad+=("$f needs $av")
done
[ ${#bad[@]} -eq 0 ] && ok "evidockctl, evidockd and libevidock do not link FFmpeg" ||
        not_ok "evidockctl, evidockd and libevidock do not link FFmpeg" "${bad[@]}"
av=$(needed "$dest$libexecdir/evidock/evidock-media-worker" | grep -cE '^libav(format|codec|util)\.')
[ "$av" -eq 3 ] && ok "the media worker links libavformat, libavcodec, libavutil" ||
        not_ok "the media worker links libavformat, libavcodec, libavutil" "$(needed "$dest$libexecdir/evidock/evidock-media-worker")"

# run as installed: the scratch prefix over the real one, no LD_LIBRARY_PATH, no build tree
run_installed() {
        env -u LD_LIBRARY_PATH unshare -m sh -c 'mount --make-rprivate / && mount --bind "$1$2" "$2" && shift 2 && exec "$@"' \
                sh "$dest" "$prefix" "$@" 2>&1
}
if ! unshare -m true 2>/dev/null || [ ! -d "$prefix" ]; then
        skip "the installed evidockctl --help runs" "no private mount namespace here (unshare -m) or no $prefix"
else
        out=$(run_installed "$bindir/evidockctl" --help)
        grep -q '^Usage: evidockctl' <<<"$out" && ok "the installed evidockctl --help runs (RUNPATH, LD_LIBRARY_PATH unset)" ||
                not_ok "the installed evidockctl --help runs (RUNPATH, LD_LIBRARY_PATH unset)" "$out"
        out=$(run_installed "$sbindir/evidockd" --version)
        grep -q '^evidockd ' <<<"$out" && ok "the installed evidockd --version runs" || not_ok "the installed evidockd --version runs" "$out"
        # and the check can fail: without the private library the same command does not start
        mv "$dest$privlib" "$dest$privlib.away"
        out=$(run_installed "$bindir/evidockctl" --help)
        mv "$dest$privlib.away" "$dest$privlib"
        grep -q 'libevidock' <<<"$out" && ok "without the private library it does not start" ||
                not_ok "without the private library it does not start" "$out"
fi

echo "1..$n"
exit $failed
