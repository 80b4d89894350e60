/* Multi-airport city codes (IATA metropolitan area codes such as LON or NYC): a client may
 * search from "all London airports" with one code. The table is curated in storage/metro.c;
 * a code's airports are those of its list that the reference data holds, so an airport that
 * closes drops out by itself. An airport code always wins over a city code. */
#ifndef FS_METRO_H
#define FS_METRO_H

#include "storage/airport_index.h"

#include <stddef.h>

/* Airports of city code `code` (case-insensitive) present in `idx`, in the table's order
 * (main airport first); writes at most `max` and returns how many (0: not a city code). */
size_t fs_metro_airports(const fs_airport_index_t *idx, const char *code, const fs_airport_t **out, size_t max);

/* The city code whose airports include `iata`, or NULL. For grouped autocomplete. */
const char *fs_metro_code_of(const char *iata);

#endif
