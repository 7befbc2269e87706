#include "common/io/test_loop.h"

#include "common/base/assertions.h"

namespace ambit::io {

TestLoop::TestLoop(BackendKind backend) {
  auto loop = Loop::Create({.backend = backend, .clock = &clock_, .name = "test"});
  AMBIT_ASSERT(loop.ok());
  loop_ = std::move(*loop);
}

void TestLoop::Advance(base::Duration d) {
  clock_.Advance(d);
  RunUntilIdle();
}

void TestLoop::RunUntilIdle() {
  // A few non-blocking rounds let completions trigger follow-up work.
  for (int i = 0; i < 8; ++i) loop_->RunOnce(base::Duration(0));
}

bool TestLoop::RunUntil(const std::function<bool()>& pred, base::Duration real_timeout) {
  return loop_->RunUntil(pred, real_timeout);
}

}  // namespace ambit::io
