// A BIO whose reads come from one ByteQueue and whose writes go to another:
// OpenSSL talks to memory, the caller moves the bytes (sans-I/O).
#pragma once

#include <openssl/bio.h>

#include "common/tls/byte_queue.h"

namespace ambit::tls {

struct QueuePair {
  ByteQueue in;   // ciphertext from the peer, read by OpenSSL
  ByteQueue out;  // ciphertext for the peer, written by OpenSSL
};

// A new BIO over `queues` (borrowed: must outlive the BIO). nullptr on OOM.
BIO* NewQueueBio(QueuePair* queues);

}  // namespace ambit::tls
