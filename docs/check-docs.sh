#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Holds the user documentation to the code, so that a renamed key, a new option or a new verdict
# without documentation fails the build's tests. Prints TAP.
#   check-docs.sh SOURCE_ROOT PRINT_MESSAGE_IDS_BINARY
set -u
src=${1:?source root}
print_ids=${2:?print-message-ids binary}
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

journal=$src/docs/journal.md
ops=$src/docs/operations.md
conf5=$src/docs/man/evidock.conf.5
ctl1=$src/docs/man/evidockctl.1
d8=$src/docs/man/evidockd.8

# 1. every verdict's MESSAGE_ID and quarantine flag, as the library computes them
missing=()
while read -r name id quarantines; do
        grep -qF "| \`$name\` | \`$id\` | $quarantines |" "$journal" || missing+=("$name $id $quarantines")
done < <("$print_ids")
if [ "$("$print_ids" | wc -l)" -lt 20 ]; then
        not_ok "print-message-ids lists the verdicts" "got: $("$print_ids" | head -3)"
elif [ ${#missing[@]} -eq 0 ]; then
        ok "journal.md lists every verdict with its MESSAGE_ID"
else
        not_ok "journal.md lists every verdict with its MESSAGE_ID" "${missing[@]}"
fi

# 2. the daemon's event MESSAGE_IDs
missing=()
while read -r macro id; do
        grep -qF "\`$id\`" "$journal" || missing+=("$macro $id")
done < <(sed -n 's/^#define \(EVD_MID_[A-Z_]*\) *"\([0-9a-f]\{32\}\)".*/\1 \2/p' "$src/daemon/log.h")
if [ "$(grep -c '^#define EVD_MID_' "$src/daemon/log.h")" -eq 0 ]; then
        not_ok "daemon/log.h defines event MESSAGE_IDs"
elif [ ${#missing[@]} -eq 0 ]; then
        ok "journal.md lists every event MESSAGE_ID of daemon/log.h"
else
        not_ok "journal.md lists every event MESSAGE_ID of daemon/log.h" "${missing[@]}"
fi

# 2b. the journal's message catalog: an entry for every MESSAGE_ID of the code, none for others, and
#     journalctl can read it
catalog=$src/systemd/evidock.catalog
code_ids=$( { "$print_ids" | awk '{print $2}'
              sed -n 's/^#define EVD_MID_[A-Z_]* *"\([0-9a-f]\{32\}\)".*/\1/p' "$src/daemon/log.h"; } | sort -u)
cat_ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$catalog" | sort)
missing=$(comm -23 <(echo "$code_ids") <(echo "$cat_ids"))
extra=$(comm -13 <(echo "$code_ids") <(echo "$cat_ids"))
dups=$(uniq -d <<<"$cat_ids")
if [ "$(wc -l <<<"$code_ids")" -lt 30 ]; then
        not_ok "the message catalog has an entry for every MESSAGE_ID" "too few IDs from the code: $code_ids"
elif [ -z "$missing$extra$dups" ]; then
        ok "the message catalog has an entry for every MESSAGE_ID, and no other"
else
        not_ok "the message catalog has an entry for every MESSAGE_ID, and no other" \
                "missing: $(echo $missing)" "unknown: $(echo $extra)" "twice: $(echo $dups)"
fi
if command -v journalctl >/dev/null; then
        root=$(mktemp -d)
        mkdir -p "$root/usr/lib/systemd/catalog" "$root/var/lib/systemd/catalog"
        cp "$catalog" "$root/usr/lib/systemd/catalog/"
        out=$(journalctl --root="$root" --update-catalog 2>&1)
        listed=$(journalctl --root="$root" --list-catalog 2>/dev/null | awk '{print $1}' | sort)
        rm -rf "$root"
        [ "$listed" = "$cat_ids" ] && [ -z "$out" ] && ok "journalctl reads the message catalog" ||
                not_ok "journalctl reads the message catalog" "update-catalog said: $out" \
                        "listed $(wc -w <<<"$listed") of $(wc -w <<<"$cat_ids") entries"
else
        skip "journalctl reads the message catalog" "journalctl is not installed"
fi

# 3. every verdict has an admin action in operations.md
missing=()
while read -r name _; do
        grep -q "\`$name\`" "$ops" || missing+=("$name")
done < <("$print_ids")
[ ${#missing[@]} -eq 0 ] && ok "operations.md says what to do with every verdict" ||
        not_ok "operations.md says what to do with every verdict" "${missing[@]}"

# 4. every configuration key: in conf/evidock.conf and in evidock.conf(5), under its section
keys=$(sed -n 's/^ *K("\([a-z_]*\)", "\([a-z_]*\)".*/\1 \2/p' "$src/daemon/config.c")
missing=()
while read -r section key; do
        awk -v s="[$section]" -v k="$key" '
                /^\[/ { in_s = ($0 == s) }
                in_s && ($0 ~ "^#?" k " =") { found = 1 }
                END { exit !found }' "$src/conf/evidock.conf" || missing+=("conf/evidock.conf: [$section] $key")
        awk -v s=".SH [$section]" -v k=".BI $key \" = \"" '
                /^\.SH / { in_s = ($0 == s) }
                in_s && index($0, k) == 1 { found = 1 }
                END { exit !found }' "$conf5" || missing+=("evidock.conf.5: [$section] $key")
done <<<"$keys"
if [ -z "$keys" ]; then
        not_ok "daemon/config.c has keys"
elif [ ${#missing[@]} -eq 0 ]; then
        ok "every configuration key is in conf/evidock.conf and evidock.conf(5)"
else
        not_ok "every configuration key is in conf/evidock.conf and evidock.conf(5)" "${missing[@]}"
fi

# 5. every long option and command of the programs is in their man pages
check_options() { # MAN_PAGE PROGRAM_SOURCE...
        local missing=() opt man=$1
        shift
        for opt in $(cat "$@" | grep -oE '\{"[a-z-]+", (required|no|optional)_argument' | cut -d'"' -f2 | sort -u); do
                grep -qF -- "\\-\\-${opt//-/\\-}" "$man" || missing+=("--$opt")
        done
        [ ${#missing[@]} -eq 0 ] && ok "$(basename "$man") documents every option of $(basename "$1")" ||
                not_ok "$(basename "$man") documents every option of $(basename "$1")" "${missing[@]}"
}
# evidockctl: main in evidockctl.c, one daemon/ctl-<group>.c per command group
check_options "$ctl1" "$src/daemon/evidockctl.c" "$src"/daemon/ctl-*.c
check_options "$d8" "$src/daemon/evidockd.c"
missing=()
for cmd in $(sed -n 's/^ *\.name = "\([a-z-]*\)",.*/\1/p' "$src"/daemon/ctl-*.c); do
        grep -qE "^\\.(B|BI|BR) $cmd( |\$)|^\\\\fB$cmd" "$ctl1" || missing+=("$cmd")
done
[ ${#missing[@]} -eq 0 ] && ok "evidockctl.1 documents every command" ||
        not_ok "evidockctl.1 documents every command" "${missing[@]}"

# 6. the man pages format without warnings
if command -v groff >/dev/null; then
        for page in "$src"/docs/man/*.[0-9]; do
                out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
                [ -z "$out" ] && ok "$(basename "$page") formats without groff warnings" ||
                        not_ok "$(basename "$page") formats without groff warnings" "$out"
        done
else
        skip "man pages format without groff warnings" "groff is not installed"
fi

echo "1..$n"
exit $failed
