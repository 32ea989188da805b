package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// CorruptExpiryIndex commits an expiry index key too short to hold a
// time, which eviction and the sweeper meet first.
func CorruptExpiryIndex(s *Store) error {
	if err := s.Flush(context.Background()); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketByExpiry).Put([]byte{0}, nil)
	})
}
