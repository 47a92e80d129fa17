#!/usr/bin/env bash
# End to end through the real evidockctl and a real PostgreSQL: a recorder volume in, a verified and
# tagged archive plus database rows out; re-docking; late files; refused recorders; bad input; a full
# disk. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env main
V=$WORK/vol1
make_volume "$V" A1B2C3D 012345 --videos 3 --duration 2 --audios 1 --photos 1 --case "粤公(2026)刑字第0042号" --start-ago 2
enroll "$V" A1B2C3D 012345
before=$(snapshot "$V")

begin "a clean volume ingests with exit status 0 and one INTACT row per file"
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err1"; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "rows" 5 "$(log_json | wc -l)"
check_eq "INTACT rows" 5 "$(log_json | jq -r .verdict | grep -c '^INTACT$')"
check_eq "methods" "audio photo video video video" "$(log_json | jq -r .method | sort | xargs)"
check_eq "case numbers" 5 "$(log_json | jq -r .case_number | grep -c '粤公(2026)刑字第0042号')"
check_eq "officer on every row" 5 "$(log_json | jq -r .officer_id | grep -c '^012345$')"
check_eq "within 24 h" 5 "$(log_json | jq -r .within_24h | grep -c '^true$')"
end

begin "originals are bit-exact and archive copies hash to what the database says"
while read -r orig sha arch asha src; do
        check_eq "original $orig" "$sha" "$(sha256sum "$STORE/$orig" | cut -d' ' -f1)"
        check_eq "source $src" "$sha" "$(sha256sum "$V/$src" | cut -d' ' -f1)"
        check_eq "archive $arch" "$asha" "$(sha256sum "$STORE/$arch" | cut -d' ' -f1)"
done < <(log_json | jq -r '[.original_path, .sha256, .archive_path, .archive_sha256, (.original_path|sub(".*/[0-9]+_[0-9a-f]+_";""))] | @tsv' |
         while IFS=$'\t' read -r o s a h n; do
                 # the source path: the recorder keeps files in VIDEO/, AUDIO/, PHOTO/
                 src=$(cd "$V" && ls */"$n" 2>/dev/null | head -1); echo "$o $s $a $h $src"; done)
end

begin "ffprobe shows case number, method, recording time and maker on a video archive copy"
mkv=$(log_json | jq -r 'select(.method=="video") | .archive_path' | head -1)
tags=$(ffprobe -v error -show_entries format_tags -of default=noprint_wrappers=1 "$STORE/$mkv")
for t in "CASE_NUMBER=粤公(2026)刑字第0042号" "METHOD=video" "DATE_RECORDED=20" "_EVIDOCK_MAKER=012345" "_EVIDOCK_DEVICE_ID=A1B2C3D"; do
        grep -qF "TAG:$t" <<<"$tags" || fail "tag $t missing in $mkv: $tags"
done
case "$mkv" in *.mkv) ;; *) fail "archive copy $mkv is not Matroska" ;; esac
end

begin "the source volume is never modified"
check_eq "snapshot" "$before" "$(snapshot "$V")"
end

begin "docking the same volume again ingests nothing twice"
"$CTL" ingest --source "$V" --quiet 2>/dev/null; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "rows" 5 "$(log_json | wc -l)"
check_eq "distinct seqs" 5 "$(log_json | jq -r .seq | sort -u | wc -l)"
end

begin "a new segment on the recorder is picked up at the next docking, and only it"
"$SIM" --out "$V" --key "$V.key" --append --preset tiny --videos 1 --audios 0 --photos 0 --duration 2 --start-ago 0.01 --quiet >/dev/null
"$CTL" ingest --source "$V" --quiet 2>/dev/null
check_eq "rows" 6 "$(log_json | wc -l)"
check_eq "distinct seqs" 6 "$(log_json | jq -r .seq | sort -u | wc -l)"
check_eq "new row INTACT" 6 "$(log_json | jq -r .verdict | grep -c "^INTACT$")"
check_eq "each sha once" 6 "$(log_json | jq -r .sha256 | sort -u | wc -l)"
end

begin "recordings older than 24 hours are ingested and flagged late"
L=$WORK/late
make_volume "$L" L4T3R00 054321 --videos 2 --duration 2 --start-ago 30
enroll "$L" L4T3R00 054321
"$CTL" ingest --source "$L" --quiet 2>/dev/null
check_eq "late rows" 2 "$("$CTL" log --format json --device L4T3R00 | jq -r .within_24h | grep -c '^false$')"
"$CTL" log --device L4T3R00 | grep -q LATE || fail "text log does not say LATE"
end

begin "a recorder that is not enrolled is refused and nothing of it is stored"
U=$WORK/unknown
make_volume "$U" Z9Z9Z9Z 099999 --videos 1 --duration 2
"$CTL" ingest --source "$U" 2>"$WORK/err-unknown"; rc=$?
check_eq "exit status" 3 "$rc"
grep -q "not enrolled" "$WORK/err-unknown" || fail "message does not say 'not enrolled': $(cat "$WORK/err-unknown")"
check_eq "rows" 0 "$("$CTL" log --format json --device Z9Z9Z9Z | wc -l)"
[ -e "$STORE/originals/Z9Z9Z9Z" ] && fail "store has a directory for the refused recorder"
check_eq "refused in custody log" 1 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind='refused' and detail like 'Z9Z9Z9Z%'")"
end

begin "a corrupt media file is kept bit-exact in quarantine with a named verdict; the rest stay INTACT"
C=$WORK/corrupt
make_volume "$C" C0RRUPT 012346 --videos 3 --duration 2
enroll "$C" C0RRUPT 012346
victim=$(cd "$C" && ls VIDEO/*.MP4 | sed -n 2p)
head -c 40000 /dev/urandom >"$C/$victim"
want=$(sha256sum "$C/$victim" | cut -d' ' -f1)
"$CTL" ingest --source "$C" --quiet 2>"$WORK/err-corrupt"; rc=$?
check_eq "exit status (findings)" 2 "$rc"
row=$("$CTL" log --format json --device C0RRUPT | jq -c "select(.sha256==\"$want\")")
[ -n "$row" ] || fail "no row for the corrupt file"
v=$(jq -r .verdict <<<"$row")
case "$v" in HASH_MISMATCH|TRUNCATED) ;; *) fail "verdict $v, expected HASH_MISMATCH or TRUNCATED" ;; esac
jq -r '.findings[].verdict' <<<"$row" | grep -q MEDIA_INVALID || fail "no MEDIA_INVALID finding: $row"
orig=$(jq -r .original_path <<<"$row")
case "$orig" in quarantine/*) ;; *) fail "corrupt original not in quarantine: $orig" ;; esac
check_eq "quarantined original bit-exact" "$want" "$(sha256sum "$STORE/$orig" | cut -d' ' -f1)"
check_eq "other files INTACT" 2 "$("$CTL" log --format json --device C0RRUPT | jq -r .verdict | grep -c '^INTACT$')"
end

begin "a manifest with a garbage line gives MANIFEST_INVALID and the good records still verify"
M=$WORK/manifest
make_volume "$M" M4N1F35 012347 --videos 2 --duration 2
enroll "$M" M4N1F35 012347
printf 'EVDCHAIN/1;this is not a record\n' >>"$M/EVIDOCK/CHAIN.LOG"
"$CTL" ingest --source "$M" --quiet 2>/dev/null
"$CTL" chain M4N1F35 | grep -q MANIFEST_INVALID || fail "chain view shows no MANIFEST_INVALID"
check_eq "files INTACT" 2 "$("$CTL" log --format json --device M4N1F35 | jq -r .verdict | grep -c '^INTACT$')"
end

begin "a manifest record pointing at ../../../etc/passwd reads nothing outside the volume and is named"
P=$WORK/escape
make_volume "$P" E5C4PE0 012351 --videos 2 --duration 1
enroll "$P" E5C4PE0 012351
victim=$(cd "$P" && ls VIDEO/*.MP4 | sed -n 1p)
sed -i "s|;file=$victim;|;file=../../../etc/passwd;|" "$P/EVIDOCK/CHAIN.LOG"
grep -q 'file=../../../etc/passwd' "$P/EVIDOCK/CHAIN.LOG" || fail "could not plant the path"
"$CTL" ingest --source "$P" --quiet 2>/dev/null; rc=$?
check_eq "exit status (findings)" 2 "$rc"
passwd_sha=$(sha256sum /etc/passwd | cut -d' ' -f1)
check_eq "rows with the content of /etc/passwd" 0 "$("$CTL" log --format json --device E5C4PE0 | jq -r .sha256 | grep -c "$passwd_sha")"
named=$( ("$CTL" log --format json --device E5C4PE0 | jq -r '.findings[].verdict'; "$CTL" chain E5C4PE0) | grep -oE 'NAME_INVALID|MANIFEST_INVALID|SIGNATURE_INVALID|MISSING' | sort -u | xargs)
[ -n "$named" ] || fail "no verdict names the planted record"
echo "# verdicts named: $named"
# the file the record used to name is still kept (as a file no valid record names)
check_eq "the victim is kept" 1 "$("$CTL" log --format json --device E5C4PE0 | jq -r .sha256 | grep -c "$(sha256sum "$P/$victim" | cut -d' ' -f1)")"
end

begin "one file the dock cannot take (here: over max_file_size) is named, and the others are still taken"
B=$WORK/big
make_volume "$B" B1GF1LE 012352 --videos 1 --duration 1 --photos 2
"$SIM" --out "$B" --key "$B.key" --append --preset tiny --videos 1 --audios 0 --photos 0 --duration 40 \
        --start-ago 0.5 --quiet >/dev/null
enroll "$B" B1GF1LE 012352
big=$(cd "$B" && ls -S VIDEO/*.MP4 | sed -n 1p)
limit=$(( $(stat -c %s "$B/$big") - 1 ))
cp "$CONF" "$WORK/small-limit.conf"
printf '[ingest]\nmax_file_size = %s\n' "$limit" >>"$WORK/small-limit.conf"
EVIDOCK_CONFIG=$WORK/small-limit.conf "$CTL" ingest --source "$B" 2>"$WORK/err-big"; rc=$?
check_eq "exit status (a file left for later)" 2 "$rc"
grep -q "larger than the $limit bytes allowed" "$WORK/err-big" || fail "message: $(grep -i big "$WORK/err-big" | head -3)"
check_eq "the other files" 3 "$("$CTL" log --format json --device B1GF1LE | wc -l)"
"$CTL" chain B1GF1LE | grep -q "UNREADABLE" || fail "the chain view does not name the file UNREADABLE"
"$CTL" ingest --source "$B" --quiet 2>/dev/null; rc=$?
check_eq "with the default limit the file is taken at the next docking" 4 "$("$CTL" log --format json --device B1GF1LE | wc -l)"
end

begin "a file with a non-UTF-8 name and no record is kept in quarantine under a safe name"
N=$WORK/names
make_volume "$N" N4M3S00 012348 --videos 1 --duration 2
enroll "$N" N4M3S00 012348
printf 'planted' >"$N/VIDEO/bad"$'\xff'"name.MP4"
"$CTL" ingest --source "$N" --quiet 2>/dev/null; rc=$?
check_eq "exit status (findings)" 2 "$rc"
row=$("$CTL" log --format json --device N4M3S00 | jq -c 'select(.seq==null)')
jq -r '.findings[].verdict' <<<"$row" | grep -q NAME_INVALID || fail "no NAME_INVALID: $row"
jq -r '.findings[].verdict' <<<"$row" | grep -q SEGMENT_INSERTED || fail "no SEGMENT_INSERTED: $row"
case "$(jq -r .original_path <<<"$row")" in quarantine/*/x_*_bad_name.MP4) ;; *) fail "stored as $(jq -r .original_path <<<"$row")" ;; esac
end

begin "an archive disk that fills up stops cleanly, keeps nothing half written, and resumes"
if [ "$(id -u)" -ne 0 ]; then
        T_NAME="$T_NAME # SKIP needs root to mount a size-limited tmpfs"
else
        mkdir -p "$WORK/small"
        if ! mount -t tmpfs -o size=1700k tmpfs "$WORK/small"; then
                fail "cannot mount a tmpfs"
        else
                setup_env small "$WORK/small/store"
                F=$WORK/full
                make_volume "$F" FU11D5K 012349 --videos 6 --duration 4
                enroll "$F" FU11D5K 012349
                "$CTL" ingest --source "$F" --quiet 2>"$WORK/err-full"; rc=$?
                check_eq "exit status" 1 "$rc"
                grep -q "reserve" "$WORK/err-full" || fail "message does not name the reserve: $(cat "$WORK/err-full")"
                n1=$(log_json | wc -l)
                [ "$n1" -lt 6 ] || fail "all files fitted; the test proves nothing ($n1 rows)"
                check_eq "no temp files" 0 "$(find "$STORE" -name '.evd-tmp*' | wc -l)"
                [ "$n1" -ge 1 ] || fail "not even one file fitted: make the tmpfs larger"
                check_eq "every stored original has a row" "$n1" "$(find "$STORE/originals" -type f 2>/dev/null | wc -l)"
                mount -o remount,size=64m "$WORK/small"
                "$CTL" ingest --source "$F" --quiet 2>/dev/null; rc=$?
                check_eq "exit status after space returned" 0 "$rc"
                check_eq "rows" 6 "$(log_json | wc -l)"
                check_eq "distinct seqs" 6 "$(log_json | jq -r .seq | sort -u | wc -l)"
        fi
fi
end

begin "a FAT32 card image is read in user space (no mount) and ingested like a docked recorder"
I=$WORK/card
make_volume "$I" C4RD1MG 012350 --videos 2 --duration 2 --photos 1 --start-ago 1
enroll "$I" C4RD1MG 012350
mkfs.vfat -F 32 -n CARD -C "$WORK/card.img" 40960 >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i "$WORK/card.img" "$I"/* ::/
sum_before=$(sha256sum "$WORK/card.img")
"$CTL" ingest --image "$WORK/card.img" --quiet 2>"$WORK/err-card"; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "INTACT rows" 3 "$("$CTL" log --format json --device C4RD1MG | jq -r .verdict | grep -c '^INTACT$')"
check_eq "image untouched" "$sum_before" "$(sha256sum "$WORK/card.img")"
end

begin "the custody log verifies, and fails naming the row when a custody row is altered in the database"
export EVIDOCK_CONFIG=$WORK/evidock-main.conf
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
DBM=$(sed -n 's/^url = //p' "$WORK/evidock-main.conf")
psql "$DBM" -qAt -c "ALTER TABLE custody_events DISABLE TRIGGER USER; UPDATE custody_events SET detail = detail || ' (edited)' WHERE id = 5; ALTER TABLE custody_events ENABLE TRIGGER USER" >/dev/null 2>&1 || fail "could not tamper"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status after tampering" 2 "$rc"
grep -q "event 5" "$WORK/audit" || fail "audit does not name event 5: $(cat "$WORK/audit")"
end

begin "the database refuses UPDATE and DELETE of evidence rows"
DBM=$(sed -n 's/^url = //p' "$WORK/evidock-main.conf")
psql "$DBM" -qAt -c "UPDATE files SET verdict='INTACT'" >/dev/null 2>&1 && fail "UPDATE files succeeded"
psql "$DBM" -qAt -c "DELETE FROM files" >/dev/null 2>&1 && fail "DELETE files succeeded"
check_eq "rows still there" 6 "$("$CTL" log --format json --device A1B2C3D | wc -l)"
end

finish
