#include "storage/metro.h"

#include <string.h>
#include <strings.h>

/* IATA metropolitan area codes and their airports, main airport first. Codes that are also
 * an airport's own code (BER, SHA, ...) are left out: the airport wins. */
static const struct {
    const char *code;
    const char *airports[8];
} metros[] = {
    {"BJS", {"PEK", "PKX"}},
    {"BUE", {"EZE", "AEP"}},
    {"BUH", {"OTP", "BBU"}},
    {"CHI", {"ORD", "MDW"}},
    {"DTT", {"DTW", "DET"}},
    {"JKT", {"CGK", "HLP"}},
    {"LON", {"LHR", "LGW", "STN", "LTN", "LCY", "SEN"}},
    {"MIL", {"MXP", "LIN", "BGY"}},
    {"MOW", {"SVO", "DME", "VKO", "ZIA"}},
    {"NYC", {"JFK", "EWR", "LGA"}},
    {"OSA", {"KIX", "ITM", "UKB"}},
    {"PAR", {"CDG", "ORY", "BVA"}},
    {"REK", {"KEF", "RKV"}},
    {"RIO", {"GIG", "SDU"}},
    {"ROM", {"FCO", "CIA"}},
    {"SAO", {"GRU", "CGH", "VCP"}},
    {"SEL", {"ICN", "GMP"}},
    {"STO", {"ARN", "BMA", "NYO", "VST"}},
    {"TYO", {"HND", "NRT"}},
    {"WAS", {"IAD", "DCA", "BWI"}},
    {"YMQ", {"YUL", "YMX", "YHU"}},
    {"YTO", {"YYZ", "YTZ", "YKF"}},
};
#define N_METROS (sizeof metros / sizeof metros[0])

size_t fs_metro_airports(const fs_airport_index_t *idx, const char *code, const fs_airport_t **out, size_t max)
{
    for (size_t i = 0; code && i < N_METROS; i++) {
        if (strcasecmp(metros[i].code, code) != 0)
            continue;
        size_t n = 0;
        for (size_t j = 0; j < 8 && metros[i].airports[j] && n < max; j++) {
            const fs_airport_t *a = fs_airport_index_lookup(idx, metros[i].airports[j]);
            if (a)
                out[n++] = a;
        }
        return n;
    }
    return 0;
}

const char *fs_metro_code_of(const char *iata)
{
    for (size_t i = 0; iata && i < N_METROS; i++)
        for (size_t j = 0; j < 8 && metros[i].airports[j]; j++)
            if (strcasecmp(metros[i].airports[j], iata) == 0)
                return metros[i].code;
    return NULL;
}
