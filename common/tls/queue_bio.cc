#include "common/tls/queue_bio.h"

#include <climits>

namespace ambit::tls {
namespace {

QueuePair* Queues(BIO* b) { return static_cast<QueuePair*>(BIO_get_data(b)); }

int QueueWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  Queues(b)->out.Append(data, static_cast<size_t>(len));
  return len;
}

int QueueRead(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  const size_t n = Queues(b)->in.Read(out, static_cast<size_t>(len));
  if (n == 0) {
    BIO_set_retry_read(b);  // need more ciphertext from the caller
    return -1;
  }
  return static_cast<int>(n);
}

long QueueCtrl(BIO* b, int cmd, long, void*) {  // NOLINT(runtime/int): OpenSSL's types
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING: {
      const size_t n = Queues(b)->in.size();
      return n > LONG_MAX ? LONG_MAX : static_cast<long>(n);  // NOLINT(runtime/int)
    }
    case BIO_CTRL_WPENDING:
      return 0;
    default:
      return 0;
  }
}

int QueueCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* Method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ambit-queue");
    BIO_meth_set_write(m, QueueWrite);
    BIO_meth_set_read(m, QueueRead);
    BIO_meth_set_ctrl(m, QueueCtrl);
    BIO_meth_set_create(m, QueueCreate);
    return m;
  }();
  return method;
}

}  // namespace

BIO* NewQueueBio(QueuePair* queues) {
  BIO* b = BIO_new(Method());
  if (b != nullptr) BIO_set_data(b, queues);
  return b;
}

}  // namespace ambit::tls
