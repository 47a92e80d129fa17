#!/usr/bin/env bash
# Hostile volumes (issue 9): what an officer can put on a recorder without any key must end in a verdict,
# never in a crash, a hang, silence or a docking that stops for good. One case per defect class found in
# review; each failed on the code before its fix. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env hvol
[ -n "${EVIDOCK_E2E_KEEP:-}" ] && trap - EXIT && echo "# work dir $WORK"
rows() { "$CTL" log --format json --device "$1" | wc -l; }

# ---- item 2: two files that archive to one name ----------------------------------------------------
begin "files that archive to one name (A.MP4, A.MOV, PHOTO/A.MP4: same content, foreign) each get their own"
V=$WORK/names
make_volume "$V" NAM3S01 012360 --videos 2 --duration 1
enroll "$V" NAM3S01 012360
first=$(cd "$V" && ls VIDEO/*.MP4 | head -1)
mkdir -p "$V/PHOTO"
cp "$V/$first" "$V/VIDEO/A.MP4"; cp "$V/$first" "$V/VIDEO/A.MOV"; cp "$V/$first" "$V/PHOTO/A.MP4"
"$CTL" ingest --source "$V" >"$WORK/out-names" 2>"$WORK/err-names"; rc=$?
check_eq "exit status (findings, not a crash)" 2 "$rc"
check_eq "rows" 5 "$(rows NAM3S01)"
"$CTL" log --format json --device NAM3S01 >"$WORK/names.json"
check_eq "distinct archive copies" 5 "$(jq -r .archive_path "$WORK/names.json" | grep -v '^null$' | sort -u | wc -l)"
while read -r arch sum; do
        check_eq "archive copy $arch" "$sum" "$(sha256sum "$STORE/$arch" 2>/dev/null | cut -d' ' -f1)"
done < <(jq -r 'select(.archive_path != null) | "\(.archive_path) \(.archive_sha256)"' "$WORK/names.json")
while read -r orig sum; do
        check_eq "original $orig" "$sum" "$(sha256sum "$STORE/$orig" 2>/dev/null | cut -d' ' -f1)"
done < <(jq -r '"\(.original_path) \(.sha256)"' "$WORK/names.json")
end

begin "after it, the next docking of the same volume runs (nothing stored twice)"
"$CTL" ingest --source "$V" --quiet >/dev/null 2>&1; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "rows" 5 "$(rows NAM3S01)"
end

# ---- item 11: findings by the hundred thousand ----------------------------------------------------------
begin "a manifest of 400 forged records adds at most ${PER_KIND:=100} findings of one kind (the rest counted)"
A=$WORK/amplify
make_volume "$A" AMP1IF1 012361 --videos 1 --duration 1
enroll "$A" AMP1IF1 012361
seg=$(grep ';type=SEG;' "$A/EVIDOCK/CHAIN.LOG" | head -1)
# forged records: a seq, a file and a hash of their own, the signature of another record
for n in $(seq 10 409); do
        sed -e "s/;seq=[0-9]*;/;seq=$n;/" -e "s|;file=[^;]*;|;file=VIDEO/FORGED_$n.MP4;|" <<<"$seg"
done >>"$A/EVIDOCK/CHAIN.LOG"
"$CTL" ingest --source "$A" --quiet >/dev/null 2>"$WORK/err-amp"; rc=$?
check_eq "exit status (findings)" 2 "$rc"
dock=$(psql "$DB" -qAt -c "SELECT max(id) FROM dockings WHERE device_id = 'AMP1IF1'")
psql "$DB" -qAt -F' ' -c "SELECT verdict, count(*) FROM findings WHERE docking_id = $dock GROUP BY verdict" >"$WORK/amp-counts"
sed 's/^/# /' "$WORK/amp-counts"
while read -r verdict n; do
        [ "$n" -le $((PER_KIND + 1)) ] || fail "$n $verdict findings stored for one docking"
done <"$WORK/amp-counts"
grep -q "^SIGNATURE_INVALID " "$WORK/amp-counts" || fail "no SIGNATURE_INVALID finding at all"
n=$(psql "$DB" -qAt -c "SELECT count(*) FROM findings WHERE docking_id = $dock AND verdict = 'SIGNATURE_INVALID' AND detail LIKE '% more SIGNATURE_INVALID findings%counted, not stored%'")
check_eq "the count of those not stored" 1 "$n"
check_eq "the recording beside them" 1 "$(rows AMP1IF1)"
end

# ---- item 6: forks across dockings; a record that comes after its recording ----------------------------
begin "a second history for stored sequence numbers: kept, SEGMENT_CONFLICT on the new and appended to the stored"
F=$WORK/fork
start=$(date -d '2 hours ago' -Iseconds)
make_volume "$F" F0RK001 012362 --videos 2 --duration 1 --start "$start"
enroll "$F" F0RK001 012362
"$CTL" ingest --source "$F" --quiet >/dev/null 2>&1; rc=$?
check_eq "first docking" 0 "$rc"
first_ids=$("$CTL" log --format json --device F0RK001 | jq -r .id | sort -n | paste -sd, -)
rm -rf "$F"   # the same key (F.key stays), other recordings under the same sequence numbers
make_volume "$F" F0RK001 012362 --videos 2 --duration 1 --start "$start" --seed 2
"$CTL" ingest --source "$F" --quiet >/dev/null 2>&1; rc=$?
check_eq "second docking (findings)" 2 "$rc"
check_eq "rows (both versions kept)" 4 "$(rows F0RK001)"
"$CTL" log --format json --device F0RK001 | jq -c "select(.id as \$i | [$first_ids] | index(\$i) | not)" >"$WORK/fork-new.json"
check_eq "new versions marked SEGMENT_CONFLICT" "SEGMENT_CONFLICT SEGMENT_CONFLICT" "$(jq -r .verdict "$WORK/fork-new.json" | paste -sd' ' -)"
check_eq "new versions in quarantine" 2 "$(jq -r .original_path "$WORK/fork-new.json" | grep -c '^quarantine/')"
check_eq "stored versions unchanged" "INTACT INTACT" "$(psql "$DB" -qAt -c "SELECT verdict FROM files WHERE id IN ($first_ids) ORDER BY id" | paste -sd' ' -)"
check_eq "the finding appended to each stored version" 2 "$(psql "$DB" -qAt -c "SELECT count(DISTINCT file_id) FROM findings WHERE file_id IN ($first_ids) AND verdict = 'SEGMENT_CONFLICT'")"
check_eq "conflict links" 2 "$(psql "$DB" -qAt -c "SELECT count(*) FROM file_links WHERE relation = 'conflict' AND file_id IN ($first_ids)")"
check_eq "custody events for them" 2 "$(psql "$DB" -qAt -c "SELECT count(*) FROM custody_events WHERE kind = 'finding_added' AND file_id IN ($first_ids)")"
end

begin "a recording docked before its record was written, docked again with it: linked, not stored twice"
L=$WORK/late
make_volume "$L" LATE001 012363 --videos 2 --duration 1
enroll "$L" LATE001 012363
cp "$L/EVIDOCK/CHAIN.LOG" "$WORK/late-full.log"
grep -v -e '_0002\.MP4;' -e ';type=END;' "$WORK/late-full.log" >"$L/EVIDOCK/CHAIN.LOG"
"$CTL" ingest --source "$L" --quiet >/dev/null 2>&1; rc=$?
check_eq "first docking (the recording without a record: findings)" 2 "$rc"
check_eq "rows after the first docking" 2 "$(rows LATE001)"
cp "$WORK/late-full.log" "$L/EVIDOCK/CHAIN.LOG"
"$CTL" ingest --source "$L" >"$WORK/late-out" 2>&1; rc=$?
check_eq "second docking (the record verifies)" 0 "$rc"
check_eq "rows after the second docking" 2 "$(rows LATE001)"
check_eq "the record linked to the stored copy" 1 "$(psql "$DB" -qAt -c "SELECT count(*) FROM file_links l JOIN files f ON f.id = l.file_id WHERE l.relation = 'record_found' AND f.device_id = 'LATE001' AND f.record_hash IS NULL AND l.verdict = 'INTACT' AND l.seq = 2")"
check_eq "its custody event" 1 "$(psql "$DB" -qAt -c "SELECT count(*) FROM custody_events WHERE kind = 'linked' AND device_id = 'LATE001'")"
"$CTL" ingest --source "$L" --quiet >/dev/null 2>&1; rc=$?
check_eq "third docking" 0 "$rc"
check_eq "rows after the third docking" 2 "$(rows LATE001)"
check_eq "links after the third docking" 1 "$(psql "$DB" -qAt -c "SELECT count(*) FROM file_links WHERE device_id = 'LATE001'")"
end

begin "the custody log verifies"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
[ "$rc" = 0 ] || fail "$(tail -3 "$WORK/audit")"
end

finish
