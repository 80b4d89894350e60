/* The internal protobuf RPC (schemas/rpc.proto, docs/RPC.md) as a bench protocol.
 *
 * In a scenario with `protocol = rpc`, a [request]'s `path` is the method name and its `body`
 * the method's request message written as JSON ({"code": "{q}"} for GetAirport), mapped onto
 * the message by field name through the protobuf-c descriptors: strings, bytes (the JSON
 * string's bytes), numbers, booleans, enums (by name or number), nested objects and arrays for
 * repeated fields. `header = Token: SECRET` sets the envelope's token and `header = Deadline: MS`
 * its deadline. Every request is rendered once into a complete frame (id 1: one request is
 * outstanding per connection, so ids need not differ).
 *
 * Responses are read as frames and unpacked; the RPC status is reported in the HTTP-like
 * classes the report prints (OK 200, INVALID_ARGUMENT 400, UNAUTHENTICATED 401, NOT_FOUND 404,
 * RESOURCE_EXHAUSTED 429, INTERNAL 500, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED
 * 504); only OK counts as a success.
 */
#include "bench/proto.h"

#include "runtime/alloc.h"
#include "schemas/prices.pb-c.h"
#include "schemas/rpc.pb-c.h"
#include "schemas/search.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RESPONSE (64u << 20)

static const struct {
    const char *method;
    const ProtobufCMessageDescriptor *request;
} methods[] = {
    {"Ping", &fs__rpc__ping__descriptor},
    {"GetAirport", &fs__rpc__get_airport_request__descriptor},
    {"SearchFlights", &fs__search__search_request__descriptor},
    {"IngestPrices", &fs__prices__price_batch__descriptor},
};

static const ProtobufCMessageDescriptor *request_type(const char *method)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i].method, method) == 0)
            return methods[i].request;
    return NULL;
}

/*--- JSON -> protobuf-c message --------------------------------------------------------------*/

static ProtobufCMessage *from_json(const ProtobufCMessageDescriptor *d, json_t *obj, char **err);

/* Writes one scalar (or sub-message) of field `f` from `v` at `dst`. */
static int set_value(const ProtobufCFieldDescriptor *f, json_t *v, void *dst, char **err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (!json_is_string(v))
            goto wrong;
        *(char **)dst = fs_strdup(json_string_value(v));
        return 0;
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v))
            goto wrong;
        size_t n = json_string_length(v);
        ProtobufCBinaryData *b = dst;
        b->data = fs_malloc(n ? n : 1);
        memcpy(b->data, json_string_value(v), n);
        b->len = n;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            goto wrong;
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(v))
            goto wrong;
        if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            *(double *)dst = json_number_value(v);
        else
            *(float *)dst = (float)json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!json_is_integer(v))
            goto wrong;
        *(int32_t *)dst = (int32_t)json_integer_value(v);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!json_is_integer(v))
            goto wrong;
        *(int64_t *)dst = (int64_t)json_integer_value(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *ev =
            json_is_string(v)    ? protobuf_c_enum_descriptor_get_value_by_name(e, json_string_value(v))
            : json_is_integer(v) ? protobuf_c_enum_descriptor_get_value(e, (int)json_integer_value(v))
                                 : NULL;
        if (!ev)
            goto wrong;
        *(int *)dst = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(v))
            goto wrong;
        ProtobufCMessage *m = from_json(f->descriptor, v, err);
        *(ProtobufCMessage **)dst = m;
        return m ? 0 : -1;
    }
    }
wrong:
    *err = fs_sprintf("field '%s': wrong JSON type", f->name);
    return -1;
}

static size_t type_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    default:
        return 4;
    }
}

static int set_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_t *v, char **err)
{
    char *base = (char *)m;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if (f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        return set_value(f, v, base + f->offset, err);
    }
    if (!json_is_array(v)) {
        *err = fs_sprintf("field '%s': repeated, needs an array", f->name);
        return -1;
    }
    size_t n = json_array_size(v), size = type_size(f);
    char *arr = fs_calloc(n ? n : 1, size);
    *(void **)(base + f->offset) = arr;
    size_t *count = (size_t *)(base + f->quantifier_offset);
    for (size_t i = 0; i < n; i++) {
        if (set_value(f, json_array_get(v, i), arr + i * size, err) != 0)
            return -1;
        *count = i + 1;
    }
    return 0;
}

/* A heap message (free with protobuf_c_message_free_unpacked(m, NULL)), or NULL with *err. */
static ProtobufCMessage *from_json(const ProtobufCMessageDescriptor *d, json_t *obj, char **err)
{
    ProtobufCMessage *m = fs_calloc(1, d->sizeof_message);
    protobuf_c_message_init(d, m);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) {
            *err = fs_sprintf("%s has no field '%s'", d->name, key);
            protobuf_c_message_free_unpacked(m, NULL);
            return NULL;
        }
        if (json_is_null(v))
            continue;
        if (set_field(m, f, v, err) != 0) {
            protobuf_c_message_free_unpacked(m, NULL);
            return NULL;
        }
    }
    return m;
}

/* The payload of a request: its JSON body packed as the method's message. */
static int pack_payload(const fs_proto_req_t *r, ProtobufCBinaryData *out, char **err)
{
    *out = (ProtobufCBinaryData){0, NULL};
    if (!r->body)
        return 0;
    const ProtobufCMessageDescriptor *d = request_type(r->target);
    if (!d) {
        *err = fs_sprintf("method '%s' has no known request message; leave out the body", r->target);
        return -1;
    }
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    if (!json_is_object(j)) {
        *err = fs_sprintf("body of %s is not a JSON object: %s", r->target, j ? "not an object" : je.text);
        json_decref(j);
        return -1;
    }
    ProtobufCMessage *m = from_json(d, j, err);
    json_decref(j);
    if (!m)
        return -1;
    out->len = protobuf_c_message_get_packed_size(m);
    out->data = fs_malloc(out->len ? out->len : 1);
    protobuf_c_message_pack(m, out->data);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

/* "Name: value" of a scenario header, or NULL. */
static const char *header(const fs_proto_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nheaders; i++)
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':') {
            const char *v = r->headers[i] + n + 1;
            while (*v == ' ')
                v++;
            return v;
        }
    return NULL;
}

static int rpc_render(const fs_proto_req_t *r, fs_bench_buf_t *out, char **err)
{
    ProtobufCBinaryData payload;
    if (pack_payload(r, &payload, err) != 0)
        return -1;
    Fs__Rpc__RpcRequest req = FS__RPC__RPC_REQUEST__INIT;
    req.method = (char *)r->target;
    req.has_id = true;
    req.id = 1;
    req.token = (char *)header(r, "Token");
    const char *deadline = header(r, "Deadline");
    if (deadline) {
        req.has_deadline_ms = true;
        req.deadline_ms = (uint32_t)strtoul(deadline, NULL, 10);
    }
    req.has_payload = payload.data != NULL;
    req.payload = payload;
    size_t size = fs__rpc__rpc_request__get_packed_size(&req);
    out->data = fs_malloc(size + 4);
    out->len = size + 4;
    uint32_t be = htonl((uint32_t)size);
    memcpy(out->data, &be, 4);
    fs__rpc__rpc_request__pack(&req, (uint8_t *)out->data + 4);
    free(payload.data);
    return 0;
}

/*--- responses -------------------------------------------------------------------------------*/

/* The buffer is freed as soon as a response is complete, so that none is left when the
 * engine frees the state after the last response (only a response cut off by the end of the
 * run leaves its partial buffer behind). */
typedef struct rpc_state {
    uint8_t hdr[4];
    size_t have_hdr;
    uint8_t *body;
    size_t len, have;
} rpc_state_t;

static void rpc_reset(void *state)
{
    rpc_state_t *st = state;
    free(st->body);
    memset(st, 0, sizeof *st);
}

static int http_like(int status)
{
    switch (status) {
    case FS__RPC__STATUS__OK:
        return 200;
    case FS__RPC__STATUS__INVALID_ARGUMENT:
        return 400;
    case FS__RPC__STATUS__UNAUTHENTICATED:
        return 401;
    case FS__RPC__STATUS__NOT_FOUND:
        return 404;
    case FS__RPC__STATUS__RESOURCE_EXHAUSTED:
        return 429;
    case FS__RPC__STATUS__UNIMPLEMENTED:
        return 501;
    case FS__RPC__STATUS__UNAVAILABLE:
        return 503;
    case FS__RPC__STATUS__DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}

static fs_proto_rc_t finish(rpc_state_t *st, fs_proto_resp_t *resp)
{
    Fs__Rpc__RpcResponse *r =
        fs__rpc__rpc_response__unpack(NULL, st->len, st->body ? st->body : (uint8_t *)"");
    free(st->body);
    st->body = NULL;
    if (!r)
        return FS_PROTO_ERROR;
    int status = r->has_status ? (int)r->status : 0;
    resp->status = http_like(status);
    resp->ok = status == FS__RPC__STATUS__OK;
    resp->keep_alive = true;
    resp->body_len = r->has_payload ? r->payload.len : 0;
    fs__rpc__rpc_response__free_unpacked(r, NULL);
    return FS_PROTO_DONE;
}

static fs_proto_rc_t rpc_feed(void *state, const char *data, size_t len, size_t *used, fs_proto_resp_t *resp)
{
    rpc_state_t *st = state;
    size_t off = 0;
    if (st->have_hdr < 4) {
        size_t n = len < 4 - st->have_hdr ? len : 4 - st->have_hdr;
        memcpy(st->hdr + st->have_hdr, data, n);
        st->have_hdr += n;
        off += n;
        if (st->have_hdr < 4) {
            *used = off;
            return FS_PROTO_MORE;
        }
        uint32_t be;
        memcpy(&be, st->hdr, 4);
        st->len = ntohl(be);
        if (st->len > MAX_RESPONSE)
            return FS_PROTO_ERROR;
        st->body = fs_malloc(st->len ? st->len : 1);
    }
    size_t n = len - off < st->len - st->have ? len - off : st->len - st->have;
    memcpy(st->body + st->have, data + off, n);
    st->have += n;
    *used = off + n;
    return st->have == st->len ? finish(st, resp) : FS_PROTO_MORE;
}

static fs_proto_rc_t rpc_eof(void *state, fs_proto_resp_t *resp)
{
    rpc_state_t *st = state;
    bool started = st->have_hdr > 0;
    rpc_reset(st);
    return started ? FS_PROTO_ERROR : FS_PROTO_MORE;
}

const fs_bench_proto_t fs_bench_proto_rpc = {
    .name = "rpc",
    .render = rpc_render,
    .state_size = sizeof(rpc_state_t),
    .reset = rpc_reset,
    .feed = rpc_feed,
    .eof = rpc_eof,
};
