// Package storetest gives tests a real, private MySQL database and a private
// Redis database index, and factories for common rows.
//
//	db := storetest.NewDB(t)          // fresh database, migrated, dropped after the test
//	rdb := storetest.NewRedis(t)      // a flushed Redis DB index reserved for this test
//	ten := storetest.Tenant(t, db, "acme")
//
// The servers default to 127.0.0.1 (the ones deploy/local/services.sh starts);
// IACC_TEST_MYSQL_DSN and IACC_TEST_REDIS_URL override them.
package storetest
