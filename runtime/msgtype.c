/* The process-wide registry of message type ids and protobuf-c body helpers. */
#include "runtime/actor_int.h"

#include "runtime/alloc.h"
#include "schemas/runtime.pb-c.h"

#include <stdlib.h>

/* A few dozen types at most, registered once at start: a linear table is enough and keeps
 * the lookup trivially correct. */
typedef struct {
    uint32_t type;
    const ProtobufCMessageDescriptor *desc;
} entry_t;

static entry_t *types;
static size_t n_types, cap_types;

int fs_msg_type_register(uint32_t type, const ProtobufCMessageDescriptor *desc)
{
    const ProtobufCMessageDescriptor *old = fs_msg_type_descriptor(type);
    if (old)
        return old == desc ? FS_OK : FS_EEXIST;
    if (n_types == cap_types) {
        cap_types = cap_types ? cap_types * 2 : 32;
        types = fs_realloc(types, cap_types * sizeof *types);
    }
    types[n_types++] = (entry_t){type, desc};
    return FS_OK;
}

const ProtobufCMessageDescriptor *fs_msg_type_descriptor(uint32_t type)
{
    for (size_t i = 0; i < n_types; i++)
        if (types[i].type == type)
            return types[i].desc;
    return NULL;
}

void fs_runtime_register_types(void)
{
    fs_msg_type_register(FS_MSG_PING, &fs__runtime__ping__descriptor);
    fs_msg_type_register(FS_MSG_PONG, &fs__runtime__pong__descriptor);
    fs_msg_type_register(FS_MSG_ECHO, &fs__runtime__echo__descriptor);
}

void *fs_pb_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = fs_calloc(1, desc->sizeof_message);
    protobuf_c_message_init(desc, m);
    return m;
}

void fs_pb_free(ProtobufCMessage *body)
{
    if (body)
        protobuf_c_message_free_unpacked(body, NULL);
}

void *fs_msg_body(const fs_msg_t *msg, const ProtobufCMessageDescriptor *desc)
{
    return msg->body && msg->body->descriptor == desc ? msg->body : NULL;
}
