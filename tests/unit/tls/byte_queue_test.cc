#include "common/tls/byte_queue.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <random>

namespace ambit::tls {
namespace {

TEST_CASE("ByteQueue behaves like a FIFO under random appends, reads and consumes") {
  ByteQueue q;
  std::deque<std::byte> model;
  std::mt19937 rng(7);
  uint8_t next = 0;
  for (int step = 0; step < 5000; ++step) {
    const size_t n = rng() % 40000;
    switch (rng() % 4) {
      case 0: {  // append
        std::vector<std::byte> data(n);
        for (auto& b : data) b = std::byte{next++};
        q.Append(data.data(), data.size());
        model.insert(model.end(), data.begin(), data.end());
        break;
      }
      case 1: {  // zero-copy append of part of a prepared region
        auto region = q.Prepare(n + 1);
        REQUIRE(region.size() >= n + 1);
        const size_t k = n / 2;
        for (size_t i = 0; i < k; ++i) region[i] = std::byte{next++};
        q.Commit(k);
        for (size_t i = 0; i < k; ++i) model.push_back(region[i]);
        break;
      }
      case 2: {  // copy out
        std::vector<std::byte> out(n);
        const size_t got = q.Read(out.data(), n);
        REQUIRE(got == std::min(n, model.size()));
        REQUIRE(
            std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got), model.begin()));
        model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(got));
        break;
      }
      default: {  // consume through the readable span
        auto r = q.Readable();
        REQUIRE(r.size() == model.size());
        const size_t k = std::min(n, r.size());
        REQUIRE(std::equal(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(k), model.begin()));
        q.Consume(k);
        model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    REQUIRE(q.size() == model.size());
  }
}

}  // namespace
}  // namespace ambit::tls
