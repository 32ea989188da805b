// Package store holds the adapters of ports.ResponseStore, the stored
// Responses API answers that previous_response_id continues and
// GET/DELETE /v1/responses/{id} read and remove:
//
//   - boltstore: the embedded default. One file in a data directory, no
//     setup, survives a restart; serves one replica (one process holds the
//     file).
//   - redisstore: for several replicas, which must all see the same
//     responses: each opens the same Redis.
//
// Both pass one contract suite, storetest.Run. Both keep a response as one
// record in the same compact binary encoding (package internal/record).
package store
