#include "storage/resolve.h"

#include "runtime/alloc.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

char *fs_resolve_ip(const char *host, const char *what, char **err)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
        return fs_strdup(host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0) {
        *err = fs_sprintf("cannot resolve %s host '%s': %s", what, host, gai_strerror(rc));
        return NULL;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    return fs_strdup(ip);
}
