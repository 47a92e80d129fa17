#!/usr/bin/env bash
# The supervision reports end to end: real recorders ingested by the real evidockctl into a real
# PostgreSQL (one on time, one late, one tampered, one refused, one enrolled that never docked), then
# `evidockctl report` in every format; the HTML page rendered by a real browser (headless Chromium) to a
# PNG that must not be blank, and its DOM must show the numbers. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env report
enroll_unit() { # DIR DEVICE OFFICER UNIT
        "$SIM" --out "$1" --key "$1.key" --print-pubkey >"$1.pub" &&
        "$CTL" device enroll --device "$2" --officer "$3" --unit "$4" --key "$1.pub" >/dev/null
}
make_volume "$WORK/ok" OK00001 111111 --videos 2 --duration 2 --start-ago 2 --case "粤公(2026)刑字第0042号"
enroll_unit "$WORK/ok" OK00001 111111 440300000001
make_volume "$WORK/late" LATE001 222222 --videos 2 --duration 2 --start-ago 30
enroll_unit "$WORK/late" LATE001 222222 440300000002
make_volume "$WORK/bad" BAD0001 333333 --videos 2 --duration 2 --start-ago 2 --fault hash-mismatch
enroll_unit "$WORK/bad" BAD0001 333333 440300000001
make_volume "$WORK/never" NEVER01 444444 --videos 1 --duration 2
enroll_unit "$WORK/never" NEVER01 444444 440300000001
make_volume "$WORK/stranger" STRANGE 555555 --videos 1 --duration 2
for v in ok late bad stranger; do "$CTL" ingest --source "$WORK/$v" --quiet >/dev/null 2>&1; done

begin "compliance --json: totals, the late officer, findings, the refusal and the silent recorder"
j=$("$CTL" report compliance --since 3d --json 2>"$WORK/err") || fail "exit $?: $(cat "$WORK/err")"
total() { jq -r ".rows[] | select(.level==\"total\") | .$1" <<<"$j"; }
check_eq "recordings" 6 "$(total recordings)"
check_eq "late" 2 "$(total late)"
check_eq "within 24 h" 4 "$(total within_24h)"
check_eq "with case" 2 "$(total case_linked)"
check_eq "late officer" "0" "$(jq -r '.rows[] | select(.level=="officer" and .key=="222222") | .rate' <<<"$j")"
check_eq "on-time officer" "1" "$(jq -r '.rows[] | select(.level=="officer" and .key=="111111") | .rate' <<<"$j")"
check_eq "units" "440300000001 440300000002" "$(jq -r '.rows[] | select(.level=="unit") | .key' <<<"$j" | xargs)"
check_eq "worst delay over a day" true "$(jq -r '.rows[] | select(.level=="total") | .worst_delay_s > 86400' <<<"$j")"
check_eq "hash mismatch counted" true "$(jq -r '[.findings_by_verdict[] | select(.verdict=="HASH_MISMATCH") | .files] | add > 0' <<<"$j")"
check_eq "refusal counted" 1 "$(jq -r '.findings_by_verdict[] | select(.verdict=="NOT_ENROLLED") | .docking' <<<"$j")"
check_eq "silent recorder" "NEVER01" "$(jq -r '.silent_recorders[].device' <<<"$j" | xargs)"
check_eq "today in the days" true "$(jq -r '.days | length >= 3' <<<"$j")"
end

begin "compliance text marks the officer below the goal"
"$CTL" report compliance --since 3d >"$WORK/c.txt" 2>&1 || fail "exit $?"
grep -Eq '^222222 .* 0\.0%!' "$WORK/c.txt" || fail "no '!' on the late officer: $(cat "$WORK/c.txt")"
grep -Eq '^111111 .*100\.0% ' "$WORK/c.txt" || fail "on-time officer not at 100 %"
end

begin "findings report names the tampered file and the refused recorder"
f=$("$CTL" report findings --since 3d --json) || fail "exit $?"
check_eq "tampered recorder" true "$(jq -r '[.findings[] | select(.verdict=="HASH_MISMATCH" and .recorder=="BAD0001" and (.file|test("^VIDEO/")))] | length > 0' <<<"$f")"
check_eq "refusal" 1 "$(jq -r '[.findings[] | select(.verdict=="NOT_ENROLLED" and .file_id==null)] | length' <<<"$f")"
"$CTL" report findings --since 3d | grep -q 'meaning:' || fail "text findings without explanations"
end

begin "CSV with a byte-order mark, one row per group"
"$CTL" report compliance --since 3d --format csv --bom -o "$WORK/c.csv" 2>/dev/null || fail "exit $?"
check_eq "BOM" "efbbbf" "$(head -c3 "$WORK/c.csv" | od -An -tx1 | tr -d ' \n')"
check_eq "total line" "total,,6,4,2" "$(grep '^total' "$WORK/c.csv" | cut -d, -f1-5)"
end

begin "the HTML page renders in a real browser: not blank, numbers and Chinese text shown"
"$CTL" report compliance --since 3d --format html -o "$WORK/r.html" 2>/dev/null || fail "exit $?"
grep -q '<script' "$WORK/r.html" && fail "the page has a script"
grep -Eq '(src|href)=' "$WORK/r.html" && fail "the page loads something"
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1600 \
        --screenshot="$WORK/r.png" "file://$WORK/r.html" >/dev/null 2>&1
[ -s "$WORK/r.png" ] || fail "no screenshot"
sd=$(identify -format '%[fx:standard_deviation]' "$WORK/r.png" 2>/dev/null || echo 0)
awk "BEGIN {exit !($sd > 0.05)}" || fail "the screenshot looks blank (standard deviation $sd)"
# red and green bars are drawn (the late officer, the on-time one)
colors=$(convert "$WORK/r.png" -unique-colors txt:- 2>/dev/null)
grep -qi '#3A7D44' <<<"$colors" || fail "no green (within 24 h) pixels"
grep -qi '#C0392B' <<<"$colors" || fail "no red (late) pixels"
dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$WORK/r.html" 2>/dev/null)
grep -q 'id="kpi-recordings">6<' <<<"$dom" || fail "recordings KPI not 6"
grep -q '执法记录合规报告' <<<"$dom" || fail "Chinese title missing"
grep -q '222222' <<<"$dom" || fail "late officer missing"
end

begin "cases linked after ingest count, and a long-term recording without a verified disc is named"
seqs=$("$CTL" log --json --device LATE001 | jq -r .seq | sort -n | xargs)
"$CTL" case open "K-2026-7" --category criminal --reason "report test" >/dev/null 2>&1 || fail "case open"
"$CTL" case assign "K-2026-7" --device LATE001 --seq "${seqs% *}-${seqs#* }" --reason "linked at the dock" >/dev/null 2>&1 ||
        fail "case assign"
lt=$("$CTL" log --json --device OK00001 | jq -r .id | head -1)
"$CTL" mark set long-term --file "$lt" --ground dispute --reason "the party disputes" >/dev/null 2>&1 || fail "mark"
j=$("$CTL" report compliance --since 3d --json)
check_eq "with case (2 from the recorder + 2 linked)" 4 "$(jq -r '.rows[] | select(.level=="total") | .case_linked' <<<"$j")"
check_eq "linked officer" 2 "$(jq -r '.rows[] | select(.level=="officer" and .key=="222222") | .case_linked' <<<"$j")"
check_eq "long-term without disc" 1 "$(jq -r '.rows[] | select(.level=="total") | .longterm_without_disc' <<<"$j")"
check_eq "long-term recorder" 1 "$(jq -r '.rows[] | select(.level=="device" and .key=="OK00001") | .longterm_without_disc' <<<"$j")"
end

begin "bad arguments are usage errors; --help needs no database; an existing output is not replaced"
EVIDOCK_DATABASE="host=/nonexistent" "$CTL" report compliance --help >/dev/null 2>&1; check_eq "help" 0 $?
"$CTL" report compliance --goal 120 >/dev/null 2>&1; check_eq "goal 120" 64 $?
"$CTL" report findings --format html >/dev/null 2>&1; check_eq "findings html" 64 $?
"$CTL" report compliance --since today --until yesterday >/dev/null 2>&1; check_eq "empty period" 64 $?
"$CTL" report compliance --bom >/dev/null 2>&1; check_eq "bom without csv" 64 $?
"$CTL" report compliance extra >/dev/null 2>&1; check_eq "extra argument" 64 $?
"$CTL" report compliance --since 400d >/dev/null 2>"$WORK/err"; check_eq "over a year" 1 $?
grep -q 'longer than' "$WORK/err" || fail "no reason for the refused period: $(cat "$WORK/err")"
"$CTL" report compliance --format csv -o "$WORK/c.csv" >/dev/null 2>&1; check_eq "existing output" 1 $?
check_eq "existing output kept" "efbbbf" "$(head -c3 "$WORK/c.csv" | od -An -tx1 | tr -d ' \n')"
end

finish
