#!/usr/bin/env bash
# Writes the query lists of the flight scenarios (bench/scenarios/flight-*.txt). Dates are
# written as {date+N} / {month+N} and expanded by flightshark-bench when it runs, so the lists
# stay valid. Cold lists are large enough that a 5-second run rarely repeats a query (each
# repeat would be a cache hit).
set -euo pipefail
cd "$(dirname "$0")/scenarios"
# busy one-stop markets (long-haul pairs without a direct flight in the data) and busy
# direct markets
one_stop=(JFK-BKK MAD-NRT MAN-BKK LAX-SIN DUB-SYD CDG-SYD FRA-AKL BCN-BKK)
direct=(DUB-LHR LHR-JFK CDG-JFK DUB-BCN AMS-BCN MAD-FCO LHR-DXB FRA-SIN)
cabins=(economy premium_economy business first)

{
  # Answers of one size class (busy one-stop markets: 40-46 KB each), so that the static file
  # nginx serves (the size of the first answer) is the size of every answer.
  echo "# cache hits: 20 one-stop searches repeated (the warm-up fills the cache)"
  for p in JFK-BKK MAN-BKK LAX-SIN BCN-BKK; do
    o=${p%-*} d=${p#*-}
    for day in 30 37 44 51 58; do
      echo "origin=$o&destination=$d&departure_date={date+$day}"
    done
  done
} >flight-cached-queries.txt

{
  echo "# cold one-stop searches: 8 markets x 90 dates x 9 passengers x 2 cabins"
  for p in "${one_stop[@]}"; do
    o=${p%-*} d=${p#*-}
    for day in $(seq 10 99); do
      for pax in 1 2 3 4 5 6 7 8 9; do
        for c in economy business; do
          echo "origin=$o&destination=$d&departure_date={date+$day}&passengers=$pax&cabin_class=$c"
        done
      done
    done
  done | shuf --random-source=<(yes)
} >flight-cold-queries.txt

{
  echo "# cold month calendars: 16 markets x 8 months x 9 passengers x 4 cabins"
  for p in "${one_stop[@]}" "${direct[@]}"; do
    o=${p%-*} d=${p#*-}
    for m in 1 2 3 4 5 6 7 8; do
      for pax in 1 2 3 4 5 6 7 8 9; do
        for c in "${cabins[@]}"; do
          echo "origin=$o&destination=$d&{month+$m}&passengers=$pax&cabin_class=$c"
        done
      done
    done
  done | shuf --random-source=<(yes)
} >flight-calendar-queries.txt
wc -l flight-*-queries.txt >&2
