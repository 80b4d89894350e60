/* The methods of the internal RPC (runtime/rpc.h, docs/RPC.md): Ping, GetAirport,
 * SearchFlights, IngestPrices. */
#ifndef FS_API_RPC_METHODS_H
#define FS_API_RPC_METHODS_H

/* Registers the methods in the RPC method table and the message types they send across
 * workers (fs.prices.PriceBatch 300 / PriceBatchReply 301). Idempotent; call at worker start
 * (or before forking) and before the RPC server serves. */
void fs_api_rpc_register(void);

#endif
