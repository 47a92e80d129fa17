#!/usr/bin/env bash
# For every verdict: a volume made by evidock-sim with exactly that fault ingests with exactly that
# verdict named on the right files, the clean files beside it stay INTACT, every file on the volume is
# preserved (one row each, bit-exact), and the custody log verifies. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env verdicts
SUITE=${1:-ed25519-sha256} # the signature suite of the recorders

# fault | expected verdict | other verdicts allowed | files that carry a finding (n or "all")
table='hash-mismatch|HASH_MISMATCH||1
truncated|TRUNCATED|MEDIA_INVALID|1
signature-invalid|SIGNATURE_INVALID||1
unsigned|UNSIGNED||1
link-mismatch|LINK_MISMATCH||1
segment-gap|SEGMENT_GAP||1
segment-inserted|SEGMENT_INSERTED||1
segment-reordered|SEGMENT_REORDERED||2
segment-duplicate|SEGMENT_DUPLICATE||1
segment-conflict|SEGMENT_CONFLICT||2
session-break|SESSION_BREAK||1
time-gap|TIME_GAP||1
time-overlap|TIME_OVERLAP||1
clock-anomaly|CLOCK_ANOMALY||1
identity-mismatch|IDENTITY_MISMATCH||all
deletion-logged|DELETION_LOGGED||0
manifest-invalid|MANIFEST_INVALID||0
rollback|CHAIN_ROLLBACK||0
foreign-key|SIGNATURE_INVALID||1
bad-name|NAME_INVALID|SEGMENT_INSERTED|1'

i=0
while IFS='|' read -r fault expect extra affected; do
        i=$((i + 1))
        dev=$(printf 'V%06d' "$i")
        vol=$WORK/v-$fault
        begin "$fault: $expect on the right files, the rest INTACT, every file kept"
        common=(--device "$dev" --officer 012345 --unit 440300000000 --key "$vol.key" --suite "$SUITE"
                --preset tiny --videos 3 --audios 1 --photos 1 --duration 1 --start-ago 1)
        if [ "$fault" = rollback ]; then
                # the recorder was docked with its full chain first; later it presents a shorter one (the same
                # recordings: same seed and start time, so the same files and records)
                start=$(date -d '1 hour ago' -Iseconds)
                common=(--device "$dev" --officer 012345 --unit 440300000000 --key "$vol.key" --suite "$SUITE"
                        --preset tiny --videos 3 --audios 1 --photos 1 --duration 1 --start "$start")
                "$SIM" --out "$vol" "${common[@]}" --quiet >/dev/null
                enroll "$vol" "$dev" 012345
                "$CTL" ingest --source "$vol" --quiet 2>/dev/null
                rm -rf "$vol"
                line=$("$SIM" --out "$vol" "${common[@]}" --fault "$fault" | grep '^fault ')
        else
                line=$("$SIM" --out "$vol" "${common[@]}" --fault "$fault" | grep '^fault ')
                enroll "$vol" "$dev" 012345
        fi
        if [ -z "$line" ]; then fail "evidock-sim made no volume with fault $fault"; end; continue; fi
        "$CTL" ingest --source "$vol" --quiet 2>"$WORK/err-$fault"; rc=$?
        check_eq "exit status (findings)" 2 "$rc"
        rows=$("$CTL" log --format json --device "$dev")
        files=$(cd "$vol" && find . -type f ! -path './EVIDOCK/*' | sort)
        nfiles=$(grep -c . <<<"$files")
        # every file on the volume is preserved exactly once, bit-exact
        while read -r f; do
                sha=$(sha256sum "$vol/$f" | cut -d' ' -f1)
                # a copy under a second name is a second file with its own row
                want=$(cd "$vol" && find . -type f ! -path './EVIDOCK/*' -print0 | xargs -0 sha256sum | grep -c "^$sha ")
                n=$(jq -r --arg s "$sha" 'select(.sha256==$s) | .original_path' <<<"$rows" | wc -l)
                [ "$n" -eq "$want" ] || { fail "$f has $n rows, expected $want"; continue; }
                for o in $(jq -r --arg s "$sha" 'select(.sha256==$s) | .original_path' <<<"$rows"); do
                        [ "$(sha256sum "$STORE/$o" | cut -d' ' -f1)" = "$sha" ] || fail "$f: stored copy $o differs"
                done
        done <<<"$files"
        if [ "$fault" = rollback ]; then
                check_eq "rows (from the first docking)" 5 "$(grep -c . <<<"$rows")"
        else
                check_eq "rows" "$nfiles" "$(grep -c . <<<"$rows")"
        fi
        # the verdicts named: exactly the expected one (and the allowed companions)
        docking=$("$CTL" chain "$dev" | sed -n 's/^  docking [0-9]* finding \([A-Z_]*\).*/\1/p')
        named=$( (jq -r '.findings[].verdict' <<<"$rows"; echo "$docking") | grep . | sort -u)
        grep -qx "$expect" <<<"$named" || fail "$expect not named; named: $(echo $named)"
        for v in $named; do
                [ "$v" = "$expect" ] && continue
                grep -qw "$v" <<<"$extra" || fail "unexpected verdict $v (named: $(echo $named))"
        done
        flagged=$(jq -r 'select(.verdict!="INTACT") | .sha256' <<<"$rows" | grep -c .)
        intact=$(jq -r 'select(.verdict=="INTACT") | .sha256' <<<"$rows" | grep -c .)
        total=$(grep -c . <<<"$rows")
        if [ "$affected" = all ]; then
                check_eq "files flagged" "$total" "$flagged"
        else
                check_eq "files flagged" "$affected" "$flagged"
                check_eq "clean files INTACT" "$((total - affected))" "$intact"
        fi
        # the named target file (when it is still on the volume) carries the verdict
        target=$(sed -n 's/^fault [a-z-]*: \([A-Z]*\/[^ ]*\.[A-Z0-9]*\) .*/\1/p' <<<"$line")
        if [ -n "$target" ] && [ -f "$vol/$target" ] && [ "$affected" != 0 ] && [ "${target%%/*}" != EVIDOCK ]; then
                sha=$(sha256sum "$vol/$target" | cut -d' ' -f1)
                jq -r --arg s "$sha" 'select(.sha256==$s) | .findings[].verdict' <<<"$rows" | grep -qx "$expect" ||
                        fail "target $target does not carry $expect"
                jq -r --arg s "$sha" --arg v "$expect" 'select(.sha256==$s and (.findings|map(.verdict)|index($v))) | .original_path' <<<"$rows" |
                        grep -q '^quarantine/' || fail "target $target not in quarantine"
        fi
        [ "$T_CUR_FAILED" -eq 0 ] || echo "# sim said: $line"
        end
done <<<"$table"

begin "the custody log of all these dockings verifies"
"$CTL" audit verify >"$WORK/audit" 2>&1 || fail "audit verify: $(cat "$WORK/audit")"
end

finish
