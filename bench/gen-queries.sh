#!/usr/bin/env bash
# Regenerates the query lists of the benchmark scenarios from the real airport data:
#   scenarios/autocomplete-queries.txt  200 prefixes (2-5 characters) as users type them into an
#                                       airport search box: city, airport-name and IATA-code
#                                       prefixes, in lower, Capitalised and UPPER case
#   scenarios/airport-codes.txt         200 IATA codes of large airports (some typed in lower case)
# Deterministic (no random numbers: mawk and gawk differ): candidates are taken from the large
# airports of OurAirports with scheduled service, cities come from OpenFlights for the same IATA
# codes, and the lists pick evenly spaced candidates. Same data, same files.
# Usage: bench/gen-queries.sh [DATA_DIR]   (default: ../shared/data relative to the repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-$here/../../shared/data}
ourairports=$data/ourairports/airports.csv
openflights=$data/openflights/airports.dat
for f in "$ourairports" "$openflights"; do
  [[ -r "$f" ]] || { echo "gen-queries: $f not found" >&2; exit 1; }
done

LC_ALL=C awk -v codes_out="$here/scenarios/airport-codes.txt" '
# Splits one CSV line (double quotes, "" escapes; both files use this dialect) into f[1..n].
function csv(line, f,    n, i, c, q, cur) {
  n = 0; cur = ""; q = 0
  for (i = 1; i <= length(line); i++) {
    c = substr(line, i, 1)
    if (q) {
      if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 }
      else cur = cur c
    } else if (c == "\"") q = 1
    else if (c == ",") { f[++n] = cur; cur = "" }
    else cur = cur c
  }
  f[++n] = cur
  return n
}
function ascii_word(s) { return s ~ /^[A-Za-z][A-Za-z .-]*$/ }
function trim(s) { sub(/[ .-]+$/, "", s); return s }
# Case as typed: mostly lower case, often Capitalised, sometimes all upper case.
function typed(s, i,    k) {
  k = i % 5
  if (k == 0 || k == 3) return tolower(s)
  if (k == 1 || k == 4) return toupper(substr(s, 1, 1)) tolower(substr(s, 2))
  return toupper(s)
}
function add(kind, s) { cand[kind, ++ncand[kind]] = s }
# Takes `want` evenly spaced candidates of `kind`, skipping any already taken (ignoring case).
function pick(kind, want, lens,    j, i, n, s, len, key, got) {
  n = ncand[kind]; got = 0
  for (j = 0; got < want && j < n; j++) {
    i = int(j * n / want) % n + 1
    while (1) {
      s = cand[kind, i]
      len = 2 + (j % lens)
      s = trim(substr(s, 1, len))
      key = tolower(s)
      if (length(s) >= 2 && !(key in seen)) break
      i = i % n + 1
    }
    seen[key] = 1
    out[++nout] = typed(s, nout)
    got++
  }
}
FNR == 1 && NR == 1 { next }                       # OurAirports header
NR == FNR {
  csv($0, f)
  # 3 type, 4 name, 11 municipality, 12 scheduled_service, 14 iata_code
  if (f[3] == "large_airport" && f[12] == "yes" && f[14] ~ /^[A-Z][A-Z][A-Z]$/) {
    large[f[14]] = 1
    add("code", f[14])
    split(f[4], w, " ")
    if (ascii_word(w[1]) && length(w[1]) >= 3) add("name", w[1])
  }
  next
}
{
  csv($0, f)
  # OpenFlights: 2 name, 3 city, 5 IATA
  if ((f[5] in large) && ascii_word(f[3]) && !(f[3] in city_seen)) { city_seen[f[3]] = 1; add("city", f[3]) }
}
END {
  pick("city", 80, 4)
  pick("code", 60, 2)
  pick("name", 60, 4)
  for (i = 1; i <= nout; i++) print out[i] > "/dev/stderr"
  n = 0
  for (j = 1; j <= ncand["code"] && n < 200; j++) {
    c = cand["code", int((j - 1) * ncand["code"] / 200) % ncand["code"] + 1]
    if (c in code_taken) continue
    code_taken[c] = 1; n++
    print (n % 7 == 0 ? tolower(c) : c) > codes_out
  }
}
' "$ourairports" "$openflights" 2>"$here/scenarios/.queries.tmp"

# interleave city / code / name prefixes (the first 60 of each kind, then the remaining cities)
awk 'NR <= 80 { city[NR] = $0; next } NR <= 140 { code[NR - 80] = $0; next } { name[NR - 140] = $0 }
     END { for (i = 1; i <= 60; i++) print city[i] "\n" code[i] "\n" name[i]; for (i = 61; i <= 80; i++) print city[i] }' \
  "$here/scenarios/.queries.tmp" >"$here/scenarios/autocomplete-queries.txt"
rm -f "$here/scenarios/.queries.tmp"
echo "gen-queries: $(wc -l <"$here/scenarios/autocomplete-queries.txt") queries, $(wc -l <"$here/scenarios/airport-codes.txt") codes"
