#!/usr/bin/env bash
# `evidockctl log` as a station listing (issue 12.4): --columns, --sort, --today/--late/--findings, a
# CJK-aware table, usage errors. Real ingests of evidock-sim volumes into a real PostgreSQL. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env listing
CASE_CJK="粤公(2026)刑字第0042号"
A=$WORK/vol-a
make_volume "$A" A1B2C3D 012345 --videos 2 --duration 3 --audios 1 --photos 1 --case "$CASE_CJK" --start-ago 2
enroll "$A" A1B2C3D 012345
L=$WORK/vol-late
make_volume "$L" L4T3R00 054321 --videos 1 --duration 2 --start-ago 30 --case "ABC-1"
enroll "$L" L4T3R00 054321
C=$WORK/vol-corrupt
make_volume "$C" C0RRUPT 012346 --videos 2 --duration 2
enroll "$C" C0RRUPT 012346
victim=$(cd "$C" && ls VIDEO/*.MP4 | sed -n 2p)
head -c 40000 /dev/urandom >"$C/$victim"
for v in "$A" "$L" "$C"; do "$CTL" ingest --source "$v" --quiet >/dev/null 2>&1; done
ALL=$("$CTL" log --json)
N_ALL=$(wc -l <<<"$ALL")

# rows TEXT: the table without its header line
rows() { tail -n +2; }
trim() { sed 's/[[:space:]]*$//'; }

begin "the setup ingested 7 files: 4 + 1 late + 2 (one corrupt)"
check_eq "rows" 7 "$N_ALL"
check_eq "late rows" 1 "$(jq -r .within_24h <<<"$ALL" | grep -c '^false$')"
check_eq "non-INTACT rows" 1 "$(jq -r .verdict <<<"$ALL" | grep -vc '^INTACT$')"
end

begin "the default listing reads like the station's: one header, one row per file, the station columns"
out=$("$CTL" log); rc=$?
check_eq "exit status" 0 "$rc"
check_eq "header" "NAME RECORDED TYPE SIZE DEVICE DURATION OFFICER CASE STATE" "$(head -1 <<<"$out" | xargs)"
check_eq "rows" 7 "$(rows <<<"$out" | wc -l)"
check_eq "CJK case on the 4 rows of A1B2C3D" 4 "$(grep -c "A1B2C3D .*$CASE_CJK" <<<"$out")"
grep -q "0:00:03" <<<"$out" || fail "no H:MM:SS duration of 3 s: $out"
grep -qE "[0-9.]+ (B|KiB|MiB)" <<<"$out" || fail "no human size: $out"
grep -q "INTACT LATE" <<<"$out" || fail "the late file is not marked LATE: $out"
grep -q "quarantined" <<<"$out" || fail "the corrupt file is not marked quarantined: $out"
end

begin "--columns chooses and orders columns; name is the recorder file's last path component"
out=$("$CTL" log --columns device,name); rc=$?
check_eq "exit status" 0 "$rc"
check_eq "header" "DEVICE NAME" "$(head -1 <<<"$out" | xargs)"
want=$(jq -r '[.device_id, (.source_path | split("/") | last)] | join(" ")' <<<"$ALL")
check_eq "device and name per row" "$want" "$(rows <<<"$out" | tr -s ' ' | trim)"
out=$("$CTL" log --columns sha256,seq,path,ingested,officer,case,type)
check_eq "header of the other columns" "SHA256 SEQ PATH INGESTED OFFICER CASE TYPE" "$(head -1 <<<"$out" | xargs)"
check_eq "sha256 column" "$(jq -r .sha256 <<<"$ALL")" "$(rows <<<"$out" | awk '{print $1}')"
check_eq "path column" "$(jq -r '.archive_path // .original_path' <<<"$ALL")" "$(rows <<<"$out" | awk '{print $3}')"
out=$("$CTL" log --columns line)
grep -q "clock" <<<"$out" || fail "--columns line is not the one-line form: $out"
grep -q "^    finding " <<<"$out" || fail "--columns line does not list findings: $out"
end

begin "--sort orders text and JSON; '-' sorts descending; ties keep ingest order"
want=$(jq -s -r 'sort_by(-.size) | .[].sha256' <<<"$ALL")
check_eq "--sort -size (text)" "$want" "$("$CTL" log --columns sha256 --sort -size | rows | trim)"
check_eq "--sort -size (json)" "$want" "$("$CTL" log --json --sort -size | jq -r .sha256)"
want=$(jq -s -r 'sort_by(.method, .size) | .[].sha256' <<<"$ALL")
check_eq "--sort type,size" "$want" "$("$CTL" log --columns sha256 --sort type,size | rows | trim)"
want=$(jq -s -r 'sort_by(.device_id) | reverse | .[].device_id' <<<"$ALL" | uniq)
check_eq "--sort -device" "$want" "$("$CTL" log --columns device --sort -device | rows | trim | uniq)"
# recorded: the late volume (30 h ago) first, then by recording start
# (a file whose recording time is unknown shows "-" and sorts first)
first=$("$CTL" log --columns recorded,device --sort recorded | rows | grep -v '^-' | head -1 | awk '{print $2}')
check_eq "--sort recorded: oldest recording first" L4T3R00 "$first"
first=$("$CTL" log --columns recorded,device --sort -recorded | rows | grep -v '^-' | tail -1 | awk '{print $2}')
check_eq "--sort -recorded: oldest recording last" L4T3R00 "$first"
check_eq "default: ingest order" "$(jq -r .sha256 <<<"$ALL")" "$("$CTL" log --columns sha256 | rows | trim)"
end

begin "--late lists only files not within 24 h, in text and JSON"
out=$("$CTL" log --late --json)
check_eq "rows" 1 "$(wc -l <<<"$out")"
check_eq "device" L4T3R00 "$(jq -r .device_id <<<"$out")"
check_eq "within_24h" false "$(jq -r .within_24h <<<"$out")"
check_eq "text rows" 1 "$("$CTL" log --late | rows | wc -l)"
check_eq "with --device A1B2C3D" 0 "$("$CTL" log --late --json --device A1B2C3D | wc -l)"
end

begin "--findings lists only files with a verdict other than INTACT or with findings"
want=$(jq -r 'select(.verdict != "INTACT" or (.findings | length) > 0) | .sha256' <<<"$ALL")
[ -n "$want" ] || fail "the setup made no file with findings"
check_eq "json" "$want" "$("$CTL" log --findings --json | jq -r .sha256)"
check_eq "text" "$(wc -l <<<"$want")" "$("$CTL" log --findings | rows | wc -l)"
check_eq "with --device L4T3R00" 0 "$("$CTL" log --findings --json --device L4T3R00 | wc -l)"
check_eq "with --late" 0 "$("$CTL" log --findings --late --json | wc -l)"
end

begin "--today lists files ingested since local midnight and combines with --until/--device/--since"
check_eq "everything was ingested today" "$N_ALL" "$("$CTL" log --today --json | wc -l)"
check_eq "--today --until today" 0 "$("$CTL" log --today --until today --json | wc -l)"
check_eq "--today --device L4T3R00" 1 "$("$CTL" log --today --device L4T3R00 --json | wc -l)"
check_eq "--today --since 2000-01-01 (the later bound wins)" "$N_ALL" "$("$CTL" log --today --since 2000-01-01 --json | wc -l)"
check_eq "--today --since now (the later bound wins)" 0 "$("$CTL" log --today --since now --json | wc -l)"
end

begin "a bad column, a bad sort key and --columns with --json are usage errors (64)"
"$CTL" log --columns name,bogus >/dev/null 2>"$WORK/err"; check_eq "bad column" 64 "$?"
grep -q "bogus" "$WORK/err" || fail "the message does not name the bad column: $(cat "$WORK/err")"
"$CTL" log --sort -nope >/dev/null 2>"$WORK/err"; check_eq "bad sort key" 64 "$?"
grep -q "nope" "$WORK/err" || fail "the message does not name the bad key: $(cat "$WORK/err")"
"$CTL" log --sort size, >/dev/null 2>&1; check_eq "empty sort key" 64 "$?"
"$CTL" log --columns "" >/dev/null 2>&1; check_eq "empty column list" 64 "$?"
"$CTL" log --json --columns name >/dev/null 2>&1; check_eq "--columns with --json" 64 "$?"
"$CTL" log --help | grep -q -- "--columns" || fail "--help does not list --columns"
end

begin "CJK case numbers line up: every row starts each column at the header's display column"
out=$("$CTL" log --columns case,device,officer)
python3 - "$out" <<'EOF' || fail "columns do not line up: $out"
import sys, unicodedata
def width(s):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
lines = sys.argv[1].split("\n")
starts = []
for line in lines:
    # the display column where each field starts (fields are separated by runs of spaces)
    cols, prev = [], " "
    for i, ch in enumerate(line):
        if ch != " " and prev == " ":
            cols.append(width(line[:i]))
        prev = ch
    starts.append(cols)
assert len(lines) == 8, len(lines)
assert all(s == starts[0] for s in starts), starts
assert any(width(l.split()[0]) > len(l.split()[0]) for l in lines), "no wide case number"
EOF
end

finish
