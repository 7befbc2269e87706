#include "common/io/buffer_pool.h"

#include "common/io/loop.h"

namespace ambit::io {

Task<void> TrimPoolEvery(Loop& loop, base::Duration period, std::shared_ptr<CancelScope> scope) {
  for (;;) {
    Status st = co_await loop.Sleep(period, {.scope = scope.get()});
    if (!st.ok() || scope->cancelled()) co_return;
    (void)buffer::BlockPool::Trim();
  }
}

}  // namespace ambit::io
